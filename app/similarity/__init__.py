"""Similar layouts: by version, by text or example definition, recommendations, parent suggestions."""
