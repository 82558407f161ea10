"""Every corpus form rendered to HTML passes tools nobody here wrote: the Nu HTML Checker and axe-core.

The renders are made in-process, as the API makes them (semantic widget lookup on the real model); the
checkers are the project's installed tools (`make tools`): vnu-jar on Java, axe-core in Debian's
headless chromium driven by playwright-core. A PDF of a sample of forms holds every field label.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import unicodedata
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pypdf import PdfReader

from app.renderer.widgets import EmbeddingWidgetMatcher
from ingest import FormDefinition, import_definition, parse_document
from render import CSP
from render.html import render_html
from render.pdf import render_pdf
from render.widgets import resolve_widgets
from tests.browser import CHROMIUM, CHROMIUM_ARGS, NODE_MODULES, PLAYWRIGHT, node, require_tool
from vectors.embedder import Embedder

pytestmark = pytest.mark.slow

VNU_JAR = NODE_MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"
CORPUS_GLOBS = ("*/current/*.json", "nav-formio/test-forms/*.json")
SERIOUS = {"serious", "critical"}
PDF_SAMPLE_PER_CORPUS = 2

# Serves each render from a fake origin with the API's CSP header (so the page's own script runs under
# the real policy), injects axe-core through the DevTools protocol (which the CSP does not govern), and
# prints one JSON object: violations and CSP reports per page. Every other request is aborted.
AXE_SCRIPT = r"""
const fs = require("fs");
const path = require("path");
const [playwrightPath, axePath, listPath, csp, chromium, argsJson] = process.argv.slice(1);
const { chromium: launcher } = require(playwrightPath);
const axeSource = fs.readFileSync(axePath, "utf8");
const files = JSON.parse(fs.readFileSync(listPath, "utf8"));
(async () => {
  const browser = await launcher.launch({ executablePath: chromium, args: JSON.parse(argsJson) });
  const context = await browser.newContext();
  await context.route("**/*", async (route) => {
    const url = new URL(route.request().url());
    if (url.origin !== "http://render.test") return route.abort();
    const file = files.find((f) => "/" + path.basename(f) === url.pathname);
    if (!file) return route.abort();
    await route.fulfill({
      status: 200,
      headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": csp },
      body: fs.readFileSync(file),
    });
  });
  const page = await context.newPage();
  const results = {};
  let current = null;
  page.on("console", (message) => {
    if (current && message.type() === "error") results[current].console.push(message.text());
  });
  page.on("pageerror", (error) => { if (current) results[current].console.push(String(error)); });
  for (const file of files) {
    current = path.basename(file);
    results[current] = { violations: [], console: [] };
    await page.goto("http://render.test/" + current, { waitUntil: "load" });
    await page.evaluate(axeSource);
    const found = await page.evaluate(async () => {
      const result = await axe.run(document, { resultTypes: ["violations"] });
      return result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
      }));
    });
    results[current].violations = found;
  }
  await browser.close();
  process.stdout.write(JSON.stringify(results));
})().catch((error) => { console.error(error); process.exit(2); });
"""


@dataclass(frozen=True)
class CorpusForm:
    name: str  # corpus/file stem, unique
    definition: FormDefinition


def corpus_files(corpora: Path) -> list[Path]:
    return sorted(path for pattern in CORPUS_GLOBS for path in corpora.glob(pattern))


def file_name(form: CorpusForm) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", form.name) + ".html"


@pytest.fixture(scope="module")
def forms(corpora: Path) -> list[CorpusForm]:
    files = corpus_files(corpora)
    assert len(files) > 300, "expected every current/ and test-forms/ file of the corpora"
    return [
        CorpusForm(
            f"{path.relative_to(corpora).parts[0]}/{path.stem}",
            import_definition(parse_document(path.read_bytes()), key=path.stem),
        )
        for path in files
    ]


@pytest.fixture(scope="module")
def renders(
    forms: list[CorpusForm], embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Every corpus form rendered to an HTML file, by form name, the way the API renders it."""
    matcher = EmbeddingWidgetMatcher(embedder)
    folder = tmp_path_factory.mktemp("renders")
    paths: dict[str, Path] = {}
    for form in forms:
        widgets = resolve_widgets(form.definition, matcher=matcher)
        path = folder / file_name(form)
        path.write_text(render_html(form.definition, widgets=widgets), encoding="utf-8")
        paths[form.name] = path
    return paths


def test_every_render_is_valid_html_to_the_nu_checker(renders: dict[str, Path]) -> None:
    require_tool(VNU_JAR, "the Nu HTML Checker (npm vnu-jar)")
    java = shutil.which("java")
    assert java, "java is missing: run `make tools`"
    completed = subprocess.run(
        [
            java,
            "-Xss4m",
            "-jar",
            str(VNU_JAR),
            "--format",
            "json",
            "--errors-only",
            *map(str, renders.values()),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = json.loads(completed.stderr or completed.stdout)
    errors = [m for m in report["messages"] if m.get("type") == "error" or m.get("subType") == "fatal"]
    by_message = Counter(m.get("message", "") for m in errors)
    examples = [f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m.get('message')}" for m in errors[:15]]
    assert not errors, f"{len(errors)} vnu errors; most common: {by_message.most_common(8)}; e.g. {examples}"
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_no_serious_or_critical_axe_violations_in_headless_chromium(
    renders: dict[str, Path], tmp_path: Path
) -> None:
    axe = NODE_MODULES / "axe-core" / "axe.min.js"
    require_tool(axe, "npm axe-core")
    listing = tmp_path / "pages.json"
    listing.write_text(json.dumps([str(path) for path in renders.values()]))
    completed = subprocess.run(
        [
            node(),
            "-e",
            AXE_SCRIPT,
            str(PLAYWRIGHT),
            str(axe),
            str(listing),
            CSP,
            str(CHROMIUM),
            json.dumps(CHROMIUM_ARGS),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout)
    assert set(results) == {path.name for path in renders.values()}, "axe did not check every page"

    serious = [
        f"{page}: {v['id']} ({v['impact']}) {v['help']} at {v['targets']}"
        for page, result in results.items()
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]
    by_rule = Counter(line.split(": ", 1)[1].split(" (", 1)[0] for line in serious)
    assert not serious, (
        f"{len(serious)} serious/critical violations by rule {dict(by_rule)}; e.g. {serious[:10]}"
    )
    blocked = [f"{page}: {line}" for page, result in results.items() for line in result["console"]]
    assert not blocked, (
        f"console errors (CSP violations, script errors) on {len(blocked)} lines: {blocked[:10]}"
    )


class _LabelTexts(HTMLParser):
    """The text of every <label> and <legend>, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"label", "legend"}:
            self._open.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in {"label", "legend"} and self._open:
            self.texts.append("".join(self._open.pop()))

    def handle_data(self, data: str) -> None:
        for parts in self._open:
            parts.append(data)


def searchable(text: str) -> str:
    """Text as PDF extraction gives it back: ligatures split, soft hyphens gone, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    return re.sub(r"\s+", " ", text).strip()


def pdf_sample(forms: list[CorpusForm]) -> list[CorpusForm]:
    """Per corpus: the form with the most fields and the first by name."""
    by_corpus: dict[str, list[CorpusForm]] = {}
    for form in forms:
        by_corpus.setdefault(form.name.split("/")[0], []).append(form)
    sample: list[CorpusForm] = []
    for group in by_corpus.values():
        largest = max(group, key=lambda form: len(form.definition.fields()))
        sample.extend({largest.name: largest, group[0].name: group[0]}.values())
    return sample[: PDF_SAMPLE_PER_CORPUS * len(by_corpus)]


def test_pdf_text_holds_every_field_label(forms: list[CorpusForm], renders: dict[str, Path]) -> None:
    sample = pdf_sample(forms)
    assert len(sample) >= 3
    for form in sample:
        html = renders[form.name].read_text(encoding="utf-8")
        parser = _LabelTexts()
        parser.feed(html)
        labels = [searchable(text) for text in parser.texts if searchable(text)]
        labelled_fields = [field for field in form.definition.fields() if field.label.strip()]
        assert len(labels) >= len(labelled_fields) > 0, form.name
        text = searchable(
            " ".join(page.extract_text() for page in PdfReader(io.BytesIO(render_pdf(html))).pages)
        )
        missing = [label for label in labels if label not in text]
        assert not missing, (
            f"{form.name}: {len(missing)} of {len(labels)} labels not in the PDF: {missing[:5]}"
        )
