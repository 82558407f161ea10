"""Rendered HTML parsed back into elements, texts and form controls, for assertions about markup."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
CONTROLS = frozenset({"input", "select", "textarea"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    parent: Element | None
    texts: list[str] = field(default_factory=list)
    children: list[Element] = field(default_factory=list)
    parts: list[str | Element] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All text inside the element, whitespace collapsed."""
        return re.sub(r"\s+", " ", "".join(self._all_text())).strip()

    def _all_text(self) -> list[str]:
        found: list[str] = []
        for part in self.parts:
            found.extend([part] if isinstance(part, str) else part._all_text())
        return found

    def get(self, name: str) -> str | None:
        return self.attrs.get(name)

    def has(self, name: str) -> bool:
        """True when the attribute is present, boolean attributes included."""
        return name in self.attrs

    def ancestors(self) -> list[Element]:
        found, node = [], self.parent
        while node is not None:
            found.append(node)
            node = node.parent
        return found

    def descendants(self) -> list[Element]:
        found = []
        for child in self.children:
            found.append(child)
            found.extend(child.descendants())
        return found


class ParsedPage(HTMLParser):
    """The element tree of a page; `elements` in document order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.elements: list[Element] = []
        self._stack = [self.root]
        self.doctype = ""
        self.feed(html)
        self.close()

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parent = self._stack[-1]
        element = Element(tag, dict(attrs), parent)
        parent.children.append(element)
        parent.parts.append(element)
        self.elements.append(element)
        if tag not in VOID:
            self._stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self._stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._stack) - 1, 0, -1):
            if self._stack[depth].tag == tag:
                del self._stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._stack[-1].texts.append(data)
        self._stack[-1].parts.append(data)

    def all(self, tag: str) -> list[Element]:
        return [element for element in self.elements if element.tag == tag]

    def by_id(self, element_id: str) -> Element:
        matches = [element for element in self.elements if element.get("id") == element_id]
        assert len(matches) == 1, f"{len(matches)} elements with id {element_id!r}"
        return matches[0]

    def controls(self, name: str) -> list[Element]:
        """Every input, select and textarea named `name`."""
        return [e for e in self.elements if e.tag in CONTROLS and e.get("name") == name]

    def label_for(self, control: Element) -> str:
        """The text of the <label for> bound to a control."""
        labels = [e for e in self.all("label") if e.get("for") == control.get("id")]
        assert len(labels) == 1, f"{len(labels)} labels for {control.get('id')!r}"
        return labels[0].text

    def group_legend(self, control: Element) -> str:
        """The legend of the nearest fieldset around a control."""
        for ancestor in control.ancestors():
            if ancestor.tag == "fieldset":
                legends = [child for child in ancestor.children if child.tag == "legend"]
                assert legends, "fieldset without legend"
                return legends[0].text
        raise AssertionError(f"control {control.get('id')!r} is in no fieldset")

    def field_label(self, name: str) -> str:
        """The visible label of the field whose controls are named `name`: label, or legend of a group."""
        return self.control_label(self.controls(name)[0])

    def control_label(self, control: Element) -> str:
        """The visible label of the field a control belongs to."""
        in_choice_group = any("pf-choices" in (a.get("class") or "").split() for a in control.ancestors())
        return self.group_legend(control) if in_choice_group else self.label_for(control)
