"""The canonical form model: every importer produces it, every renderer and diff reads it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JsonValue = Any


class SourceFormat(StrEnum):
    FORMIO = "formio"
    SURVEYJS = "surveyjs"
    JSONSCHEMA = "jsonschema"
    NATIVE = "native"


class WidgetKind(StrEnum):
    """What a field is to the person filling it in, whatever the source called it."""

    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    CURRENCY = "currency"
    DATE = "date"
    MONTH = "month"
    YEAR = "year"
    TIME = "time"
    DATETIME = "datetime"
    SELECT = "select"
    RADIO = "radio"
    CHECKBOX = "checkbox"
    CHECKBOX_GROUP = "checkbox_group"
    YES_NO = "yes_no"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    FILE = "file"
    ADDRESS = "address"
    PERSON_NAME = "person_name"
    COUNTRY = "country"
    IDENTITY_NUMBER = "identity_number"
    ORGANISATION_NUMBER = "organisation_number"
    BANK_ACCOUNT = "bank_account"
    SIGNATURE = "signature"
    RATING = "rating"
    MATRIX = "matrix"
    HIDDEN = "hidden"
    PASSWORD = "password"
    # The source type is not one we know: the renderer resolves it by semantic lookup.
    CUSTOM = "custom"


class ConditionEffect(StrEnum):
    SHOW = "show"
    HIDE = "hide"
    ENABLE = "enable"
    DISABLE = "disable"
    REQUIRE = "require"
    SET_VALUE = "set_value"
    VALIDATE = "validate"
    OTHER = "other"


class Condition(BaseModel):
    """A rule kept in structured form, evaluable or not."""

    model_config = ConfigDict(extra="forbid")

    effect: ConditionEffect
    depends_on: list[str] = Field(default_factory=list)
    # Simple comparisons (when/eq/neq/truthy) are what browsers can evaluate; the rest is kept verbatim.
    when: str | None = None
    operator: Literal["eq", "neq", "truthy", "falsy"] | None = None
    value: JsonValue = None
    expression: str | None = None
    language: str | None = None
    json_logic: JsonValue = None
    raw: JsonValue = None


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: JsonValue
    label: str
    extras: dict[str, JsonValue] = Field(default_factory=dict)


class Validation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    format: str | None = None
    custom: str | None = None
    message: str | None = None


class NodeBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = None
    source_type: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    # Every source property the model does not understand, verbatim.
    extras: dict[str, JsonValue] = Field(default_factory=dict)


class FieldNode(NodeBase):
    node: Literal["field"] = "field"
    key: str
    label: str = ""
    kind: WidgetKind = WidgetKind.TEXT
    required: bool = False
    validation: Validation = Field(default_factory=Validation)
    options: list[Option] = Field(default_factory=list)
    help_text: str | None = None
    placeholder: str | None = None
    default: JsonValue = None
    multiple: bool = False


class ContentNode(NodeBase):
    """Static text or HTML shown to the user; holds no data."""

    node: Literal["content"] = "content"
    title: str | None = None
    text: str = ""
    html: bool = False


class ContainerNode(NodeBase):
    title: str | None = None
    description: str | None = None
    children: list[LayoutNode] = Field(default_factory=list)


class PageNode(ContainerNode):
    node: Literal["page"] = "page"


class SectionNode(ContainerNode):
    """A titled group of fields: panel, fieldset, navSkjemagruppe, SurveyJS panel."""

    node: Literal["section"] = "section"


class GroupNode(ContainerNode):
    """A data-holding object: Form.io container, a nested JSON Schema object."""

    node: Literal["group"] = "group"


class ColumnsNode(ContainerNode):
    """Side-by-side layout; each child is a ColumnNode."""

    node: Literal["columns"] = "columns"


class ColumnNode(ContainerNode):
    node: Literal["column"] = "column"
    width: int | None = None


class RepeatNode(ContainerNode):
    """A repeatable group: datagrid, editgrid, paneldynamic, an array of objects."""

    node: Literal["repeat"] = "repeat"
    label: str = ""
    required: bool = False
    min_items: int | None = None
    max_items: int | None = None


LayoutNode = Annotated[
    PageNode | SectionNode | GroupNode | ColumnsNode | ColumnNode | RepeatNode | ContentNode | FieldNode,
    Field(discriminator="node"),
]
CONTAINER_TYPES = (PageNode, SectionNode, GroupNode, ColumnsNode, ColumnNode, RepeatNode)


class FormDefinition(BaseModel):
    """One form as a user sees it: texts, layout tree, fields, logic."""

    model_config = ConfigDict(extra="forbid")

    key: str
    title: str = ""
    description: str | None = None
    source_format: SourceFormat = SourceFormat.NATIVE
    texts: dict[str, str] = Field(default_factory=dict)
    layout: list[LayoutNode] = Field(default_factory=list)
    # Form-level rules (SurveyJS triggers, JSON Schema dependencies, Form.io form logic).
    logic: list[Condition] = Field(default_factory=list)
    extras: dict[str, JsonValue] = Field(default_factory=dict)
    # Export bookkeeping (ids, timestamps, editor state): kept, but never part of the content hash.
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    def walk(self) -> Iterator[tuple[tuple[str, ...], LayoutNode]]:
        """Every node in layout order with the path of container keys/titles above it."""
        yield from _walk(self.layout, ())

    def fields(self) -> list[FieldNode]:
        """The leaf fields in layout order."""
        return [node for _, node in self.walk() if isinstance(node, FieldNode)]

    def data_keys(self) -> list[str]:
        """Keys of every node that holds data (fields, repeats, groups), in layout order."""
        return [
            node.key
            for _, node in self.walk()
            if isinstance(node, FieldNode | RepeatNode | GroupNode) and node.key is not None
        ]

    def shared_field_keys(self) -> dict[str, int]:
        """Field keys that more than one field uses, with how many (real forms have them: SurveyJS shares a
        value between questions of one name, Form.io exports keep keys its builder would rename)."""
        counts = Counter(field.key for field in self.fields())
        return {key: count for key, count in counts.items() if count > 1}


def _walk(nodes: list[LayoutNode], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], LayoutNode]]:
    for node in nodes:
        yield path, node
        if isinstance(node, CONTAINER_TYPES):
            label = node.key or node.title or node.node
            yield from _walk(node.children, (*path, label))


for _model in (*CONTAINER_TYPES, FormDefinition):
    _model.model_rebuild()
