"""The statements that write a form's title write its search text too, the same way (SEARCH_FORMS finds
forms by it, so a write that skipped it would hide the form from search)."""

from __future__ import annotations

import re

from graph import queries

SETS_SEARCH_TEXT = re.compile(r"SET f\.search = (.+)")


def test_every_statement_that_sets_a_forms_title_sets_its_search_text_after_it_the_same_way() -> None:
    match = SETS_SEARCH_TEXT.search(queries.SET_MISSING_FORM_SEARCH)
    assert match is not None
    title_setters = {
        name: statement
        for name, statement in vars(queries).items()
        if name.isupper() and isinstance(statement, str) and "f.title =" in statement
    }
    assert set(title_setters) == {"CREATE_VERSION", "CREATE_VERSIONS", "CREATE_VERSION_CHAIN"}
    for name, statement in title_setters.items():
        assert SETS_SEARCH_TEXT.findall(statement) == [match.group(1)], name
        assert statement.index("f.title =") < statement.index("SET f.search"), name
