"""Markup written into definitions (help texts, content blocks) reduced to plain text paragraphs."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section", "hr"}
)
# Their content is code or styling, never text a person should read.
_DROPPED_TAGS = frozenset({"script", "style", "template", "noscript", "iframe", "object", "svg", "math"})
_LOOKS_LIKE_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>|&[a-zA-Z#][a-zA-Z0-9]*;")
_SPACES = re.compile(r"\s+")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._current: list[str] = []
        self._dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED_TAGS:
            self._dropping += 1
        elif tag in _BLOCK_TAGS:
            self._break()
            if tag == "li":
                self._current.append("• ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED_TAGS:
            self._dropping = max(0, self._dropping - 1)
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self._current.append(data)

    def _break(self) -> None:
        text = _SPACES.sub(" ", "".join(self._current)).strip()
        if text and text != "•":
            self.paragraphs.append(text)
        self._current = []

    def finish(self) -> list[str]:
        self.close()
        self._break()
        return self.paragraphs


def markup_paragraphs(markup: str) -> list[str]:
    """The readable text of an HTML fragment, one string per block; scripts and styles dropped."""
    collector = _TextCollector()
    collector.feed(markup)
    return collector.finish()


def plain_text(text: str) -> str:
    """The text itself, or the readable text of it when it holds markup, on one line."""
    if not _LOOKS_LIKE_MARKUP.search(text):
        return _SPACES.sub(" ", text).strip()
    return " ".join(markup_paragraphs(text))


def plain_paragraphs(text: str) -> list[str]:
    """Paragraphs of a text that may hold markup: blocks for markup, blank-line separated otherwise."""
    if _LOOKS_LIKE_MARKUP.search(text):
        return markup_paragraphs(text)
    blocks = (_SPACES.sub(" ", block).strip() for block in re.split(r"\n\s*\n", text))
    return [block for block in blocks if block]
