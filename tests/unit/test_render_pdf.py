"""PDF renders: offline (only data: URLs are fetched), a sheet per wizard page, labels and values kept."""

from __future__ import annotations

import io
import logging

import pytest
from pypdf import PdfReader

from app.observability import configure_logging
from ingest import FormDefinition
from ingest.native import import_native
from render.html import render_html
from render.pdf import OfflineURLFetcher, TooManyPages, render_pdf
from render.widgets import resolve_widgets

PIXEL = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="

PAGE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Søknad</title>
<link rel="stylesheet" href="http://127.0.0.1:9/remote.css">
<style>@import url("file:///etc/hostname");
body {{ background: url("https://example.invalid/bg.png"); }}</style>
</head><body><h1>Søknad om støtte</h1>
<section><h2>Personalia</h2><label for="a">Fornavn</label><input id="a" name="a" value="Ola Nordmann">
<img src="file:///etc/hostname" alt=""><img src="{PIXEL}" alt=""></section>
<section><h2>Vedlegg</h2><label for="b">Kommentar</label><textarea id="b" name="b">Ingen vedlegg</textarea>
</section></body></html>"""


def pdf_pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_only_data_urls_are_fetched() -> None:
    fetcher = OfflineURLFetcher()
    render_pdf(PAGE, fetcher=fetcher)
    assert sorted(fetcher.refused) == sorted(
        [
            "http://127.0.0.1:9/remote.css",
            "file:///etc/hostname",
            "file:///etc/hostname",
            "https://example.invalid/bg.png",
        ]
    )


def wizard() -> FormDefinition:
    return import_native(
        {
            "key": "soknad",
            "title": "Søknad om støtte",
            "layout": [
                {
                    "node": "page",
                    "title": "Personalia",
                    "children": [
                        {"node": "field", "key": "fornavn", "label": "Fornavn", "required": True},
                        {"node": "field", "key": "ektefelle", "label": "Har du ektefelle?", "kind": "yes_no"},
                    ],
                },
                {
                    "node": "page",
                    "title": "Vedlegg",
                    "children": [
                        {"node": "field", "key": "kommentar", "label": "Kommentar", "kind": "textarea"}
                    ],
                },
            ],
        }
    )


def test_each_wizard_page_starts_a_sheet_with_its_heading_labels_and_prefilled_values() -> None:
    definition = wizard()
    data = {"fornavn": "Ola Nordmann", "kommentar": "Ingen vedlegg"}
    html = render_html(definition, widgets=resolve_widgets(definition, matcher=None), data=data)

    pages = pdf_pages(render_pdf(html))

    assert len(pages) == 2
    assert all(text in pages[0] for text in ("Søknad om støtte", "Personalia", "Fornavn", "Ola Nordmann"))
    assert "Har du ektefelle?" in pages[0]
    assert all(text in pages[1] for text in ("Vedlegg", "Kommentar", "Ingen vedlegg"))
    unfilled = render_html(definition, widgets=resolve_widgets(definition, matcher=None))
    assert "Ola Nordmann" not in pdf_pages(render_pdf(unfilled))[0]


def test_a_pdf_render_logs_nothing_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    """PageForge's own style sheet draws no CSS warning, and WeasyPrint's per-step progress stays out."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO")
    try:
        render_pdf(render_html(wizard(), widgets=resolve_widgets(wizard(), matcher=None)))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert capsys.readouterr().err == ""


def long_page(paragraphs: int) -> str:
    return (
        "<!doctype html><html><head><title>t</title></head><body>"
        + "<p>line</p>" * paragraphs
        + "</body></html>"
    )


def test_layout_stops_past_the_page_limit_and_the_progress_logger_is_left_as_it_was() -> None:
    progress = logging.getLogger("weasyprint.progress")
    level = progress.level
    with pytest.raises(TooManyPages, match="more than 3 pages"):
        render_pdf(long_page(2000), max_pages=3)
    assert (progress.level, progress.filters) == (level, [])
    assert len(pdf_pages(render_pdf(long_page(30), max_pages=3))) <= 3
