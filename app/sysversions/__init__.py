"""SysVersionProcessor: system releases that pin form versions, with lineage and release diffs."""
