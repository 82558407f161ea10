"""The embedder's vector memo: which texts still need the model, and which vectors it keeps."""

from __future__ import annotations

import numpy as np

from vectors.embedder import VectorMemo


def rows(*values: float) -> np.ndarray:
    return np.array([[value, 0.0] for value in values], dtype=np.float32)


def test_recall_names_each_unknown_text_once_in_order_and_counts_reuse() -> None:
    memo = VectorMemo()
    memo.remember(["a"], rows(1.0))

    known, missing = memo.recall(["b", "a", "c", "b", "a"])

    assert missing == ["b", "c"]
    assert list(known) == ["a"]
    assert known["a"].tolist() == [1.0, 0.0]
    assert (memo.encoded, memo.reused) == (1, 3)


def test_the_least_recently_used_vectors_are_forgotten_first() -> None:
    memo = VectorMemo(max_texts=2)
    memo.remember(["a", "b"], rows(1.0, 2.0))
    memo.recall(["a"])
    memo.remember(["c"], rows(3.0))

    known, missing = memo.recall(["a", "b", "c"])

    assert missing == ["b"]
    assert sorted(known) == ["a", "c"]
    assert memo.encoded == 3


def test_a_memo_knowing_earlier_vectors_counts_none_of_them_and_keeps_room_for_more() -> None:
    memo = VectorMemo.knowing(["a", "b", "c"], rows(1.0, 2.0, 3.0), max_texts=1)
    memo.remember(["d"], rows(4.0))

    known, missing = memo.recall(["a", "b", "c", "d", "e"])

    assert missing == ["e"]
    assert [known[text][0] for text in "abcd"] == [1.0, 2.0, 3.0, 4.0]
    assert (memo.encoded, memo.reused) == (1, 4)
