"""PageForge API: FastAPI gateway over the lineage graph, the layout index and the renderer."""

__version__ = "0.1.0"
