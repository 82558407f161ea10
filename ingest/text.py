"""Layout-to-text: a short plain-language description of a form's layout, for sentence embedding."""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

from ingest.model import (
    ContainerNode,
    ContentNode,
    FieldNode,
    FormDefinition,
    LayoutNode,
    PageNode,
    RepeatNode,
    WidgetKind,
)

_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_ELLIPSIS = "…"


@dataclass(frozen=True)
class _Detail:
    """How much to say about each field; less detail is tried until the text fits."""

    options: int
    kinds: bool
    description: bool


# Most detailed first: option lists go before widget kinds, and those before headings and labels.
_DETAIL_LEVELS = (
    _Detail(options=6, kinds=True, description=True),
    _Detail(options=3, kinds=True, description=False),
    _Detail(options=0, kinds=True, description=False),
    _Detail(options=0, kinds=False, description=False),
)


def layout_text(defn: FormDefinition, *, max_chars: int = 2000) -> str:
    """Title, headings and field labels with widget kinds in layout order, at most max_chars long."""
    text = ""
    for detail in _DETAIL_LEVELS:
        text = _describe(defn, detail)
        if len(text) <= max_chars:
            return text
    return _truncate(text, max_chars)


def plain_text(value: str | None) -> str:
    """HTML and markup stripped to plain text with whitespace collapsed."""
    if not value:
        return ""
    return _plain(value)


# Labels repeat across fields, detail levels and the versions of a chain: strip each once.
@functools.lru_cache(maxsize=16384)
def _plain(value: str) -> str:
    stripped = _TAG.sub(" ", _SCRIPT_OR_STYLE.sub(" ", value))
    return " ".join(html.unescape(stripped).split())


def _describe(defn: FormDefinition, detail: _Detail) -> str:
    sentences = []
    title = plain_text(defn.title) or defn.key
    sentences.append(f"Form: {title}.")
    if detail.description and (description := plain_text(defn.description)):
        sentences.append(_sentence(description))
    loose: list[str] = []
    for node in defn.layout:
        if isinstance(node, PageNode):
            if loose:
                sentences.append(_sentence(_join(loose)))
                loose = []
            sentences.append(_container_sentence(node, detail))
        else:
            loose.extend(_describe_node(node, detail))
    if loose:
        sentences.append(_sentence(_join(loose)))
    return " ".join(sentence for sentence in sentences if sentence)


def _container_sentence(node: ContainerNode, detail: _Detail, *, end: str = ".") -> str:
    heading = _heading(node)
    parts = [part for child in node.children for part in _describe_node(child, detail)]
    return f"{heading}: {_join(parts)}{end}" if parts else f"{heading}{end}"


def _join(parts: list[str]) -> str:
    """Comma-separated, except that a nested section ends with a semicolon."""
    text = ""
    for part in parts:
        if text:
            text += " " if text.endswith(";") else ", "
        text += part
    return text.removesuffix(";")


def _describe_node(node: LayoutNode, detail: _Detail) -> list[str]:
    if isinstance(node, FieldNode):
        return [] if node.kind is WidgetKind.HIDDEN else [_describe_field(node, detail)]
    if isinstance(node, ContentNode):
        title = plain_text(node.title)
        return [title] if title else []
    if not _title(node) and not isinstance(node, PageNode | RepeatNode):
        # Columns and untitled groups only arrange their children.
        return [part for child in node.children for part in _describe_node(child, detail)]
    return [_container_sentence(node, detail, end=";")]


def _title(node: ContainerNode) -> str:
    return plain_text(node.title) or (plain_text(node.label) if isinstance(node, RepeatNode) else "")


def _heading(node: ContainerNode) -> str:
    """'Page Title', 'Section Title (repeatable)'."""
    words = ["Page" if isinstance(node, PageNode) else "Section"]
    if title := _title(node):
        words.append(title)
    if isinstance(node, RepeatNode):
        words.append("(repeatable)")
    return " ".join(words)


def _describe_field(node: FieldNode, detail: _Detail) -> str:
    label = plain_text(node.label) or node.key
    if not detail.kinds:
        return label
    kind = _kind_name(node)
    if detail.options and node.options:
        # Only the options shown are described: real enums (countries, states) run to hundreds.
        shown = ", ".join(
            plain_text(option.label) or str(option.value) for option in node.options[: detail.options]
        )
        more = ", ..." if len(node.options) > detail.options else ""
        return f"{label} ({kind}: {shown}{more})"
    return f"{label} ({kind})"


def _kind_name(node: FieldNode) -> str:
    if node.kind is WidgetKind.CUSTOM and node.source_type:
        return node.source_type
    return node.kind.value.replace("_", " ")


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!", ":")) else f"{text}."


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    if max_chars <= len(_ELLIPSIS):
        return text[:max_chars]
    cut = text[: max_chars - len(_ELLIPSIS) + 1]
    space = cut.rfind(" ")
    head = cut[:space] if space > 0 else cut[:-1]
    return head.rstrip(" ,.:;") + _ELLIPSIS
