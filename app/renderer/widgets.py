"""The semantic widget lookup backed by the process's embedding model."""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

from render.widgets import KNOWN_WIDGET_DESCRIPTIONS
from vectors.embedder import Embedder


class EmbeddingWidgetMatcher:
    """Nearest known widget by cosine similarity; the known descriptions are embedded once, on first use."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._names = [widget.value for widget, _ in KNOWN_WIDGET_DESCRIPTIONS]
        self._known: NDArray[np.float32] | None = None
        self._lock = threading.Lock()

    def match(self, descriptions: list[str]) -> list[tuple[str, float]]:
        """For each description, the nearest known widget's name and its cosine score."""
        if not descriptions:
            return []
        scores = self._embedder.encode(descriptions) @ self._known_vectors().T
        best = scores.argmax(axis=1)
        return [(self._names[column], float(scores[row, column])) for row, column in enumerate(best)]

    def _known_vectors(self) -> NDArray[np.float32]:
        with self._lock:
            if self._known is None:
                self._known = self._embedder.encode([text for _, text in KNOWN_WIDGET_DESCRIPTIONS])
            return self._known
