"""A mean-pooled sentence-transformers model run by the OpenVINO runtime, 3.4x torch's speed here.

The transformer is exported to ONNX once (with torch, from the local weights) and kept in a cache
directory under a key of the weights and the exporter; later processes read that file and never load
torch. Texts are tokenized with the model's own tokenizer.json and pooled as sentence-transformers pools
them, so the vectors are the torch path's (cosine >= 0.9999, bench/bench_encoding.py). Only OpenVINO's
runtime is loaded: its model-conversion tool reports every import to Google Analytics unless opted out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

EXPORT_FILE = "model.onnx"
ONNX_OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MEAN_POOLED = {
    "pooling_mode_mean_tokens": True,
    "pooling_mode_cls_token": False,
    "pooling_mode_max_tokens": False,
    "pooling_mode_mean_sqrt_len_tokens": False,
}
PIPELINE = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"]
NORMALIZE = "sentence_transformers.models.Normalize"


def openvino_runtime() -> Any:
    """The `openvino` module without its conversion tool (`openvino.tools.ovc`), whose import phones home.

    `openvino` imports the tool only if it can (ImportError is passed over); a None entry in sys.modules
    makes that import fail, so the telemetry client is never created.
    """
    sys.modules.setdefault("openvino.tools.ovc", None)  # type: ignore[arg-type]
    import openvino

    return openvino


class UnsupportedModel(ValueError):
    """The model's pipeline is not one this backend reproduces exactly."""


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def check_pipeline(model_dir: Path) -> int:
    """The max sequence length of a Transformer, mean Pooling (, Normalize) model; raise if it is not one."""
    entries = _json(model_dir / "modules.json")
    modules = [entry["type"] for entry in entries]
    if modules[:2] != PIPELINE or any(kind != NORMALIZE for kind in modules[2:]):
        raise UnsupportedModel(f"its modules are {modules}, not Transformer, Pooling (and Normalize)")
    pooling = _json(model_dir / entries[1]["path"] / "config.json")
    modes = {mode: bool(pooling.get(mode, False)) for mode in MEAN_POOLED}
    if modes != MEAN_POOLED:
        raise UnsupportedModel(f"it pools with {[mode for mode, on in modes.items() if on]}, not mean tokens")
    if not (model_dir / "tokenizer.json").is_file():
        raise UnsupportedModel("it has no tokenizer.json")
    return int(_json(model_dir / "sentence_bert_config.json")["max_seq_length"])


def export_key(model_dir: Path) -> str:
    """What the exported file depends on: the weights, the model's config, and the exporting libraries."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with (model_dir / name).open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    for library in ("torch", "transformers"):
        digest.update(f"{library} {metadata.version(library)}".encode())
    digest.update(f"opset {ONNX_OPSET}".encode())
    return digest.hexdigest()[:16]


def export_onnx(model_dir: Path, target: Path) -> None:
    """Write the model's transformer (token ids in, last hidden state out) to `target` as ONNX, atomically."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    transformer: Any = model[0].auto_model
    transformer.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            output = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return output.last_hidden_state

    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(),
                (sample, sample, torch.zeros_like(sample)),
                partial,
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)


class OpenVinoSentenceModel:
    """Encodes texts to unit vectors with the exported transformer on OpenVINO's CPU plugin."""

    def __init__(self, name: str, model_dir: Path, cache_dir: Path, *, threads: int) -> None:
        from tokenizers import Tokenizer

        max_tokens = check_pipeline(model_dir)
        label = re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-")[-64:]
        exported = Path(cache_dir) / f"{label}-{export_key(model_dir)}" / EXPORT_FILE
        if not exported.is_file():
            logger.info("exporting the embedding model to ONNX for OpenVINO (once): %s", exported)
            export_onnx(model_dir, exported)
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_tokens)
        self._tokenizer.no_padding()
        # f32 everywhere: on CPUs with bf16 OpenVINO would otherwise lower the precision, and the vectors.
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
        self._compiled = openvino_runtime().Core().compile_model(str(exported), "CPU", config)
        self._inputs = {port.get_any_name() for port in self._compiled.inputs}
        self.dimension = int(self._compiled.outputs[0].get_partial_shape()[2].get_length())

    def encode(self, texts: Sequence[str], batch_size: int) -> NDArray[np.float32]:
        """Unit vectors of texts, in order; texts of similar token counts are batched together."""
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda row: -len(encodings[row].ids))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        request = self._compiled.create_infer_request()
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            vectors[rows] = self._pooled(request, [encodings[row] for row in rows])
        return vectors

    def _pooled(self, request: Any, encodings: list[Any]) -> NDArray[np.float32]:
        width = max(len(encoding.ids) for encoding in encodings)
        arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in INPUTS}
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            arrays["input_ids"][row, :length] = encoding.ids
            arrays["attention_mask"][row, :length] = encoding.attention_mask
            arrays["token_type_ids"][row, :length] = encoding.type_ids
        hidden: NDArray[np.float32] = request.infer(
            {name: array for name, array in arrays.items() if name in self._inputs}
        )[0]
        mask = arrays["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        unit: NDArray[np.float32] = (pooled / norms).astype(np.float32)
        return unit
