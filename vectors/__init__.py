"""Layout vectors: the embedding model and the layout index (Qdrant Edge or qdrant-client)."""
