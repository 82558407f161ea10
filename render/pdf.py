"""PDF from the HTML render with WeasyPrint, fully offline: only `data:` URLs are ever fetched."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from weasyprint import HTML
from weasyprint.logger import PROGRESS_LOGGER
from weasyprint.urls import URLFetcher, URLFetchingError

# Paper layout on top of the page's own stylesheet (whose print rules start each wizard page on a new
# sheet): every input a box sized for handwriting, headings kept with what follows, no hyphenation (labels
# stay searchable), and text meant for screen readers printed, since paper has no other channel.
PRINT_CSS = """
@page { size: A4; margin: 18mm 16mm 20mm; @bottom-right { content: counter(page) " / " counter(pages); } }
html, body { font-family: "DejaVu Sans", sans-serif; font-size: 10pt; line-height: 1.4; hyphens: manual; }
h1, h2, h3, h4, legend { break-after: avoid; }
input, select, textarea {
  display: block; box-sizing: border-box; width: 100%; min-height: 7mm; margin: 1mm 0 3mm;
  padding: 1.2mm 2mm; border: 0.3mm solid #333; background: #fff; color: #000; font: inherit;
}
textarea { min-height: 24mm; }
input[type="checkbox"], input[type="radio"] {
  display: inline-block; width: 4mm; min-height: 4mm; height: 4mm; margin: 0 2mm 0 0; padding: 0;
  vertical-align: middle;
}
fieldset { border: 0.3mm solid #999; margin: 2mm 0 4mm; padding: 2mm 3mm; break-inside: avoid-page; }
script, button { display: none; }
.pf-visually-hidden { position: static; width: auto; height: auto; overflow: visible; clip: auto; }
"""


class OfflineURLFetcher(URLFetcher):  # type: ignore[misc]
    """Refuses every URL but `data:`, and remembers what it refused."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols={"data"}, allow_redirects=False)
        self.refused: list[str] = []

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> Any:
        if not url.lower().startswith("data:"):
            self.refused.append(url)
            raise URLFetchingError(f"offline render: refusing {url[:200]!r}")
        return super().fetch(url, headers)


_PRINT_STYLE = f"<style>{PRINT_CSS}</style>"


def with_print_style(html: str) -> str:
    """The page with the paper rules appended to its head: later author rules win over the page's own."""
    head_end = html.find("</head>")
    return html[:head_end] + _PRINT_STYLE + html[head_end:] if head_end >= 0 else _PRINT_STYLE + html


class TooManyPages(Exception):
    """The layout went past the page limit; raised while laying out, so the rest is never laid out."""

    def __init__(self, max_pages: int) -> None:
        super().__init__(f"the PDF would have more than {max_pages} pages")
        self.max_pages = max_pages


_LAYOUT_PAGE = "Step 5 - Creating layout - Page %d"


class _PageLimit(logging.Filter):
    # WeasyPrint offers no page limit and no hook inside its layout loop but the progress line it logs
    # before laying out each page: raising from a filter of that logger stops the loop at the limit.
    def __init__(self, max_pages: int) -> None:
        super().__init__()
        self.max_pages = max_pages

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _LAYOUT_PAGE and record.args and int(record.args[0]) > self.max_pages:  # type: ignore[call-overload, index]
            raise TooManyPages(self.max_pages)
        return False  # counted, never printed


@contextmanager
def _page_limit(max_pages: int | None) -> Iterator[None]:
    if max_pages is None:
        yield
        return
    limit = _PageLimit(max_pages)
    level = PROGRESS_LOGGER.level
    PROGRESS_LOGGER.addFilter(limit)
    PROGRESS_LOGGER.setLevel(logging.INFO)
    try:
        yield
    finally:
        PROGRESS_LOGGER.removeFilter(limit)
        PROGRESS_LOGGER.setLevel(level)


def render_pdf(html: str, *, fetcher: OfflineURLFetcher | None = None, max_pages: int | None = None) -> bytes:
    """The PDF of an HTML render (CPU-bound: call it off the event loop); TooManyPages past `max_pages`.

    The limit is per process (it hooks a module-level logger): one render at a time per process.
    """
    document = HTML(string=with_print_style(html), url_fetcher=fetcher or OfflineURLFetcher(), base_url=None)
    with _page_limit(max_pages):
        pdf: bytes = document.write_pdf()
    return pdf
