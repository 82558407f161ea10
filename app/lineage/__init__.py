"""Lineage questions: ancestry, diffs, merge bases, field histories, pins, impact and drift."""
