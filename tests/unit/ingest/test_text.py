"""Layout-to-text: order, bound, plain text, custom types, and how much shorter it is than raw JSON."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import pytest

from ingest.model import (
    ColumnNode,
    ColumnsNode,
    ContentNode,
    FieldNode,
    FormDefinition,
    Option,
    PageNode,
    RepeatNode,
    SectionNode,
    WidgetKind,
)
from ingest.text import layout_text, plain_text
from tests.corpora import CORPORA, corpus_files, imported

LATEST = {
    "nav-formio": "test-forms/*.json",
    "bcgov-fla-surveyjs": "current/*.json",
    "va-jsonschema": "current/*.json",
}
TAG = re.compile(r"</?[a-zA-Z][^>]*>")
STATUSES = [Option(value=v, label=v.title()) for v in ("married", "single", "divorced", "widowed", "partner")]


def application() -> FormDefinition:
    return FormDefinition(
        key="app",
        title="<h1>Application for <b>child&nbsp;benefit</b></h1>",
        layout=[
            PageNode(
                key="p1",
                title="Personal details",
                children=[
                    ColumnsNode(
                        children=[
                            ColumnNode(children=[FieldNode(key="first", label="First name")]),
                            ColumnNode(children=[FieldNode(key="last", label="Last   name\n")]),
                        ]
                    ),
                    FieldNode(key="dob", label="Date of birth", kind=WidgetKind.DATE),
                    FieldNode(key="status", label="Marital status", kind=WidgetKind.RADIO, options=STATUSES),
                    FieldNode(key="secret", label="Internal id", kind=WidgetKind.HIDDEN),
                ],
            ),
            PageNode(
                key="p2",
                title="Family",
                children=[
                    ContentNode(
                        key="intro", title="About your family", text="<p>Tell us <i>everything</i></p>"
                    ),
                    RepeatNode(
                        key="children",
                        label="Children",
                        children=[FieldNode(key="childName", label="<strong>Child's</strong> name")],
                    ),
                    SectionNode(
                        key="bank",
                        title="Payment",
                        children=[
                            FieldNode(
                                key="acct",
                                label="Account for payment",
                                kind=WidgetKind.CUSTOM,
                                source_type="navBankAccountPicker",
                            )
                        ],
                    ),
                ],
            ),
        ],
    )


def test_describes_title_headings_labels_and_kinds_in_layout_order() -> None:
    text = layout_text(application())

    assert text == (
        "Form: Application for child benefit. "
        "Page Personal details: First name (text), Last name (text), Date of birth (date), "
        "Marital status (radio: Married, Single, Divorced, Widowed, Partner). "
        "Page Family: About your family, Section Children (repeatable): Child's name (text); "
        "Section Payment: Account for payment (navBankAccountPicker)."
    )


def test_html_is_stripped_and_whitespace_collapsed() -> None:
    text = layout_text(application())

    assert "<" not in text
    assert "&nbsp;" not in text
    assert "  " not in text
    assert plain_text("<p>A&amp;B<script>alert(1)</script>\n\t <br/>C</p>") == "A&B C"


def test_custom_types_appear_with_their_label_and_hidden_fields_do_not() -> None:
    text = layout_text(application())

    assert "Account for payment (navBankAccountPicker)" in text
    assert "Internal id" not in text


def test_long_option_lists_are_abbreviated() -> None:
    many = [Option(value=str(i), label=f"Country {i}") for i in range(200)]
    defn = FormDefinition(
        key="c", title="T", layout=[FieldNode(key="c", label="Country", kind=WidgetKind.SELECT, options=many)]
    )

    text = layout_text(defn)

    assert "Country (select: Country 0, Country 1, Country 2, Country 3, Country 4, Country 5, ...)" in text
    assert "Country 6" not in text


@pytest.mark.parametrize("max_chars", [40, 120, 200, 500])
def test_the_bound_holds_and_cuts_on_a_word_boundary(max_chars: int) -> None:
    labels = [f"Question number {i} about the applicant's circumstances" for i in range(100)]
    layout = [
        FieldNode(key=f"q{i}", label=label, kind=WidgetKind.RADIO, options=STATUSES)
        for i, label in enumerate(labels)
    ]
    defn = FormDefinition(key="long", title="A very long questionnaire", layout=list(layout))
    # When even bare labels do not fit, the text is the labels cut short.
    labels_only = "Form: A very long questionnaire. " + ", ".join(labels) + "."

    text = layout_text(defn, max_chars=max_chars)

    assert len(text) <= max_chars
    assert text.endswith("…")
    kept = text.removesuffix("…")
    assert labels_only.startswith(kept)
    assert labels_only[len(kept)] in " ,.:"


def test_option_lists_shrink_first_then_go_before_labels_and_kinds() -> None:
    defn = application()
    full = layout_text(defn)
    without_options = full.replace(": Married, Single, Divorced, Widowed, Partner", "")

    shorter = layout_text(defn, max_chars=len(full) - 1)
    shortest = layout_text(defn, max_chars=len(without_options))

    assert shorter == full.replace("Widowed, Partner", "...")
    assert shortest == without_options


def latest_forms() -> list[Path]:
    files = corpus_files(*(f"{corpus}/{pattern}" for corpus, pattern in LATEST.items()))
    if len(files) < 300:
        raise RuntimeError(f"corpora missing or incomplete at {CORPORA}: {len(files)} files")
    return files


def test_corpus_texts_are_bounded_plain_and_much_shorter_than_raw_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ratios: dict[str, list[float]] = {corpus: [] for corpus in LATEST}
    for path in latest_forms():
        raw = path.read_text(encoding="utf-8")
        defn = imported(path)
        text = layout_text(defn)
        assert 0 < len(text) <= 2000, path
        assert TAG.search(text) is None, path
        assert not text.lstrip().startswith(("{", "[")), path
        for field in defn.fields()[:20]:
            if field.kind is not WidgetKind.HIDDEN and (label := plain_text(field.label)):
                assert label[:20] in text or len(text) > 1900, (path, label)
                break
        ratios[path.relative_to(CORPORA).parts[0]].append(len(text) / len(raw))

    with capsys.disabled():
        for corpus, values in ratios.items():
            mean = statistics.mean(values)
            print(f"\nlayout_text/raw JSON chars, {corpus}: mean {mean:.3f} over {len(values)} files")
    for corpus, values in ratios.items():
        assert statistics.mean(values) < 0.34, corpus  # at least 3x shorter, as the issue asks
