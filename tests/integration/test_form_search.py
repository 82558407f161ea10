"""Forms found by a word of their key or title (GET /forms?q=), against the real Neo4j of the test run.

A word of three characters or more is looked up in the forms' trigram text index; a shorter or a common one
reads the tenant's forms in key order. Whichever way a word takes, the answer is the one a reading of every
form gives: checked on the keys and titles of the real corpora, in a graph where another tenant holds the
same forms."""

from __future__ import annotations

import random
import uuid

import pytest

from graph import forms as forms_module
from graph.database import Graph
from graph.forms import FormVersionRepository, NewVersion, StoredForm
from graph.lineage import LineageRepository
from tests.corpora import FOLDERS, corpus_files, imported

pytestmark = pytest.mark.anyio

CORPUS_FILES = (
    "nav-formio/test-forms/*.json",
    "va-jsonschema/current/*.json",
    "bcgov-fla-surveyjs/current/*.json",
)


def corpus_forms() -> list[tuple[str, str]]:
    """(key, title) of every current corpus form, keyed by its folder and file name."""
    found = []
    for path in corpus_files(*CORPUS_FILES):
        folder = next(name for name in FOLDERS if name in path.parts)
        found.append((f"{folder}-{path.stem}", imported(path).title))
    return found


def version(form_key: str, title: str) -> NewVersion:
    definition = {"key": form_key, "title": title, "layout": []}
    return NewVersion(
        id=str(uuid.uuid4()),
        form_key=form_key,
        content_hash=uuid.uuid4().hex,
        definition=definition,
        source_format="native",
        title=title,
        layout_text=title,
        field_count=0,
        parents=[],
    )


async def write(repository: FormVersionRepository, tenant: str, forms: list[tuple[str, str]]) -> None:
    for start in range(0, len(forms), 100):
        await repository.create_many(
            tenant, [version(key, title) for key, title in forms[start : start + 100]]
        )


async def every_page(repository: FormVersionRepository, tenant: str, q: str, limit: int) -> list[StoredForm]:
    found: list[StoredForm] = []
    while True:
        page = await repository.list_forms(
            tenant, after=found[-1].key if found else "", limit=limit, containing=q
        )
        found.extend(page)
        if len(page) < limit:
            return found


def expected(forms: list[tuple[str, str]], q: str) -> list[str]:
    word = q.lower()
    return sorted(key for key, title in forms if word in key.lower() or word in title.lower())


def words(forms: list[tuple[str, str]], rng: random.Random, count: int) -> list[str]:
    """Substrings of the forms' keys and titles, 1 to 12 characters, in mixed case; and words in none."""
    picked = []
    for _ in range(count):
        text = rng.choice([text for pair in rng.choice(forms) for text in pair if text])
        size = rng.randint(1, min(12, len(text)))
        start = rng.randrange(len(text) - size + 1)
        word = text[start : start + size]
        picked.append(word.upper() if rng.random() < 0.3 else word)
    return [*picked, "zz-no-form-has-this", "qqq"]


@pytest.fixture
async def tenants(graph: Graph) -> tuple[FormVersionRepository, str, str, list[tuple[str, str]]]:
    repository = FormVersionRepository(graph)
    forms = corpus_forms()
    mine, other = f"search-{uuid.uuid4().hex[:8]}", f"search-other-{uuid.uuid4().hex[:8]}"
    await write(repository, mine, forms)
    await write(repository, other, forms)  # the same keys and titles, in another tenant
    return repository, mine, other, forms


async def test_every_word_finds_the_forms_whose_key_or_title_hold_it_and_only_the_tenants(
    tenants: tuple[FormVersionRepository, str, str, list[tuple[str, str]]],
) -> None:
    repository, mine, _, forms = tenants
    assert len(forms) > 300
    for q in words(forms, random.Random(19), 120):
        found = await repository.list_forms(mine, after="", limit=1000, containing=q)
        assert [form.key for form in found] == expected(forms, q), q
    # Ten a page, cursor by cursor, as the API pages them.
    for q in ("form", "Application", "tion", "va-"):
        paged = await every_page(repository, mine, q, limit=10)
        assert [form.key for form in paged] == expected(forms, q), q


async def test_a_word_common_in_another_tenant_still_finds_this_tenants_forms(
    graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More forms of another tenant hold the word than the text index is read for: the tenant's forms are
    # then read in key order, and its one form holding the word is found.
    monkeypatch.setattr(forms_module, "SEARCH_BOUND", 20)
    repository = FormVersionRepository(graph)
    word = f"w{uuid.uuid4().hex[:10]}"
    crowd, lone = f"crowd-{uuid.uuid4().hex[:8]}", f"lone-{uuid.uuid4().hex[:8]}"
    await write(repository, crowd, [(f"form-{i:03}", f"Crowded {word} {i}") for i in range(60)])
    await write(repository, lone, [("zz-last", f"The only {word.upper()}"), ("aa-first", "Nothing here")])
    found = await repository.list_forms(lone, after="", limit=50, containing=word)
    assert [(form.key, form.title) for form in found] == [("zz-last", f"The only {word.upper()}")]
    assert len(await every_page(repository, crowd, word, limit=7)) == 60


async def test_a_retitled_form_is_found_by_its_new_title_only_whichever_way_it_was_written(
    graph: Graph,
) -> None:
    repository = FormVersionRepository(graph)
    tenant = f"retitle-{uuid.uuid4().hex[:8]}"
    titles = [f"Benefits {name}{uuid.uuid4().hex[:8]}" for name in ("many", "one", "chain")]
    writes = [
        lambda: repository.create_many(tenant, [version("benefits", titles[0])]),
        lambda: repository.create(tenant, version("benefits", titles[1])),
        lambda: LineageRepository(graph).create_chain(tenant, "benefits", [version("benefits", titles[2])]),
    ]
    for written, (title, write_version) in enumerate(zip(titles, writes, strict=True), start=1):
        await write_version()
        for retired in titles[: written - 1]:
            assert await repository.list_forms(tenant, after="", limit=50, containing=retired[-11:]) == []
        found = await repository.list_forms(tenant, after="", limit=50, containing=title[-11:].upper())
        assert [(form.key, form.title, form.version_count) for form in found] == [
            ("benefits", title, written)
        ]


async def test_a_form_with_a_very_long_title_is_written_and_found_by_its_first_8000_characters(
    graph: Graph,
) -> None:
    # The text index refuses a value over 32,766 bytes: the search text is cut at 8,000 characters, whatever
    # their UTF-8 size, and both ways of matching read the same text.
    repository = FormVersionRepository(graph)
    tenant = f"long-{uuid.uuid4().hex[:8]}"
    early, late = uuid.uuid4().hex, uuid.uuid4().hex
    title = early + "😀" * 8_000 + late + "\u00d6" * 60_000  # about 152 kB of UTF-8
    await write(repository, tenant, [("long-title", title)])
    for q in (early, early[:2], "\U0001f600" * 3):
        found = await repository.list_forms(tenant, after="", limit=50, containing=q)
        assert [(form.key, form.title) for form in found] == [("long-title", title)], q
    assert await repository.list_forms(tenant, after="", limit=50, containing=late) == []
    assert await repository.list_forms(tenant, after="", limit=50, containing="\u00f6" * 3) == []
