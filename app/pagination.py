"""Keyset pagination: `limit` plus an opaque `cursor` that encodes where the last page ended."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from app.errors import Invalid

T = TypeVar("T")

LimitQuery = Annotated[int, Query(ge=1, le=200, description="Page size.")]
CursorQuery = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]

# Cursors hold keys, version numbers and offsets: never negative, and within Neo4j's signed 64-bit integers.
MAX_POSITION = 2**63 - 1


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def next_cursor(items: Sequence[T], limit: int, position: Callable[[T], Any]) -> str | None:
    """The cursor after a keyset page: its last item's position when the page is full, else None (the end)."""
    return encode_cursor(position(items[-1])) if items and len(items) == limit else None


def keyset_page(items: list[T], limit: int, position: Callable[[T], Any]) -> Page[T]:
    """A page of items read after a cursor's position, `limit` at most, ordered by `position`."""
    return Page(items=items, next_cursor=next_cursor(items, limit, position))


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, default: T) -> T:
    """The position a cursor encodes (of the default's type); 422 for a cursor we did not issue."""
    if cursor is None:
        return default
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, RecursionError) as exc:
        raise Invalid("cursor is not one this API issued") from exc
    if type(position) is not type(default) or not _issuable(position):
        raise Invalid("cursor is not one this API issued")
    return position


def _issuable(position: Any) -> bool:
    """Whether the position is a key, a number or a flat list of them, as our cursors are."""
    parts = position if isinstance(position, list) else [position]
    return all(type(part) is str or (type(part) is int and 0 <= part <= MAX_POSITION) for part in parts)


def decode_pair(cursor: str | None, default: tuple[Any, int]) -> tuple[Any, int]:
    """The (key, number) position a two-part cursor encodes, of the default's types."""
    position = decode_cursor(cursor, list(default))
    match position:
        case [first, int() as second] if type(first) is type(default[0]):
            return first, second
    raise Invalid("cursor is not one this API issued")
