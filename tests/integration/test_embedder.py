"""The real embedding model: offline loading, unit vectors, meaningful similarity, async encoding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import numpy as np
import pytest
from numpy.typing import NDArray

from ingest import layout_text
from tests.conftest import MODEL_CACHE, TEST_ENCODE_THREADS
from tests.corpora import corpus_files, imported
from vectors.embedder import DEFAULT_MODEL, Embedder, EmbedderUnavailable, resolve_model_path

DIMENSION = 384


def test_default_model_loads_offline_from_the_packaged_weights(embedder: Embedder) -> None:
    assert embedder.model_name == DEFAULT_MODEL
    assert embedder.dimension == DIMENSION
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_encode_returns_unit_float32_rows_of_the_model_dimension(embedder: Embedder) -> None:
    texts = ["Page Personal details: text First name, date Date of birth", "Page Address: text City", "x"]

    vectors = embedder.encode(texts, batch_size=2)

    assert vectors.shape == (3, DIMENSION)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, DIMENSION)


def test_similar_layouts_score_higher_than_unrelated_ones(embedder: Embedder) -> None:
    anchor, similar, unrelated = embedder.encode(
        [
            "Page Personal details: text First name, text Last name, date Date of birth",
            "Page About you: text Given name, text Surname, date Birthday",
            "Page Payment: text Bank account number, select Currency, text SWIFT code",
        ]
    )

    assert float(anchor @ similar) > float(anchor @ unrelated) + 0.2


def test_encoding_is_deterministic(embedder: Embedder) -> None:
    text = ["Page Children: datagrid Child, text Child's full name"]

    np.testing.assert_allclose(embedder.encode(text), embedder.encode(text), atol=1e-6)


def test_a_single_string_is_refused(embedder: Embedder) -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        embedder.encode("Page Address")  # type: ignore[arg-type]


def test_encode_async_matches_encode_and_keeps_the_event_loop_free(embedder: Embedder) -> None:
    texts = [
        f"Page {n}: text First name, date Date of birth, select Country of residence" for n in range(256)
    ]
    ticks: list[float] = []
    window: list[float] = []

    async def main() -> NDArray[np.float32]:
        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            window.append(time.monotonic())
            vectors = await embedder.encode_async(texts)
            window.append(time.monotonic())
            group.cancel_scope.cancel()
        return vectors

    vectors = anyio.run(main)

    np.testing.assert_allclose(vectors, embedder.encode(texts), atol=1e-5)
    # The loop kept ticking while the model worked: no pause anywhere near the length of the encode.
    during = [tick for tick in ticks if window[0] <= tick <= window[1]]
    assert window[1] - window[0] > 0.3
    assert len(during) > 10
    assert float(np.diff([window[0], *during, window[1]]).max()) < (window[1] - window[0]) / 4


def test_a_missing_model_path_raises_embedder_unavailable(tmp_path: Path) -> None:
    with pytest.raises(EmbedderUnavailable, match="model directory is missing"):
        Embedder(str(tmp_path / "no-such-model"))


def test_a_directory_without_a_model_raises_embedder_unavailable(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")

    with pytest.raises(EmbedderUnavailable, match="failed to load"):
        Embedder(str(tmp_path))


def test_remembering_encodes_each_distinct_text_once_and_returns_the_same_vectors(
    embedder: Embedder,
) -> None:
    texts = ["Page Applicant: text Name", "Page Child: date Birthday", "Page Applicant: text Name"]
    plain = embedder.encode(texts)

    with embedder.remembering() as memo:
        first = embedder.encode(texts)
        again = embedder.encode(["Page Child: date Birthday", "Page Address: text City"])

    assert (memo.encoded, memo.reused) == (3, 2)
    np.testing.assert_allclose(first, plain, atol=1e-5)
    assert np.array_equal(first[0], first[2])
    assert np.array_equal(again[0], first[1])
    np.testing.assert_allclose(again[1], embedder.encode(["Page Address: text City"])[0], atol=1e-5)


def test_remembering_ends_with_its_block_and_does_not_nest(embedder: Embedder) -> None:
    with embedder.remembering() as memo:
        embedder.encode(["Page Income: number Salary"])
        with pytest.raises(RuntimeError, match="already remembering"), embedder.remembering():
            pass
    embedder.encode(["Page Income: number Salary"])

    assert (memo.encoded, memo.reused) == (1, 0)


def corpus_layout_texts(count: int) -> list[str]:
    """Distinct layout texts of the three corpora, longest forms included (truncated at 256 tokens)."""
    files = corpus_files(
        "nav-formio/test-forms/*.json", "va-jsonschema/current/*.json", "bcgov-fla-surveyjs/**/*.json"
    )
    texts: dict[str, None] = {}
    for path in files[:: max(1, len(files) // count)]:
        texts[layout_text(imported(path))] = None
    return list(texts)[:count]


def test_the_openvino_backend_gives_the_torch_vectors_and_the_same_neighbours(embedder: Embedder) -> None:
    texts = corpus_layout_texts(120)
    torch_embedder = Embedder(backend="torch", threads=TEST_ENCODE_THREADS)

    openvino, torch = embedder.encode(texts, batch_size=16), torch_embedder.encode(texts)

    assert embedder.backend == "openvino"
    assert len(texts) >= 100
    assert float(np.min(np.sum(openvino * torch, axis=1))) > 0.9999
    ours, theirs = openvino @ openvino.T, torch @ torch.T
    np.fill_diagonal(ours, -2)
    np.fill_diagonal(theirs, -2)
    overlap = [
        len(set(np.argsort(-ours[row])[:10]) & set(np.argsort(-theirs[row])[:10])) / 10
        for row in range(len(texts))
    ]
    assert float(np.mean(overlap)) >= 0.98


def test_a_later_process_reads_the_exported_model_without_torch_or_openvino_telemetry(
    embedder: Embedder,
) -> None:
    script = (
        "import sys\n"
        "from vectors.embedder import Embedder\n"
        f"vectors = Embedder(threads=1, cache_dir={MODEL_CACHE!r}).encode(['Page Address: text City'])\n"
        "print(vectors.shape, 'torch' in sys.modules, 'openvino_telemetry' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["(1,", "384)", "False", "False"]


def test_a_model_openvino_cannot_reproduce_is_refused_naming_the_torch_backend(tmp_path: Path) -> None:
    packaged = resolve_model_path(DEFAULT_MODEL)
    for item in packaged.iterdir():
        (tmp_path / item.name).symlink_to(item)
    (tmp_path / "1_Pooling").unlink()
    (tmp_path / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": DIMENSION, "pooling_mode_cls_token": True}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))

    with pytest.raises(EmbedderUnavailable, match=r"cannot run on OpenVINO.*cls_token.*BACKEND=torch"):
        Embedder(str(tmp_path), cache_dir=tmp_path / "cache")

    assert Embedder(str(tmp_path), backend="torch", threads=1).dimension == DIMENSION
