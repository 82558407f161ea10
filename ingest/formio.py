"""Form.io JSON, NAV's dialect included, into the canonical model."""

from __future__ import annotations

import re
from typing import Any, Literal

from ingest.errors import DefinitionError
from ingest.model import (
    ColumnNode,
    ColumnsNode,
    Condition,
    ConditionEffect,
    ContentNode,
    FieldNode,
    FormDefinition,
    GroupNode,
    LayoutNode,
    Option,
    PageNode,
    RepeatNode,
    SectionNode,
    SourceFormat,
    Validation,
    WidgetKind,
)

FIELD_KINDS: dict[str, WidgetKind] = {
    "textfield": WidgetKind.TEXT,
    "tags": WidgetKind.TEXT,
    "textarea": WidgetKind.TEXTAREA,
    "number": WidgetKind.NUMBER,
    "currency": WidgetKind.CURRENCY,
    "navDatepicker": WidgetKind.DATE,
    "day": WidgetKind.DATE,
    "datetime": WidgetKind.DATETIME,
    "time": WidgetKind.TIME,
    "monthPicker": WidgetKind.MONTH,
    "year": WidgetKind.YEAR,
    "select": WidgetKind.SELECT,
    "navSelect": WidgetKind.SELECT,
    "valutavelger": WidgetKind.SELECT,
    "radio": WidgetKind.RADIO,
    "radiopanel": WidgetKind.RADIO,
    "checkbox": WidgetKind.CHECKBOX,
    "navCheckbox": WidgetKind.CHECKBOX,
    "selectboxes": WidgetKind.CHECKBOX_GROUP,
    "email": WidgetKind.EMAIL,
    "phoneNumber": WidgetKind.PHONE,
    "url": WidgetKind.URL,
    "file": WidgetKind.FILE,
    "attachment": WidgetKind.FILE,
    "address": WidgetKind.ADDRESS,
    "navAddress": WidgetKind.ADDRESS,
    "firstName": WidgetKind.PERSON_NAME,
    "surname": WidgetKind.PERSON_NAME,
    "fnrfield": WidgetKind.IDENTITY_NUMBER,
    "identity": WidgetKind.IDENTITY_NUMBER,
    "orgNr": WidgetKind.ORGANISATION_NUMBER,
    "bankAccount": WidgetKind.BANK_ACCOUNT,
    "iban": WidgetKind.BANK_ACCOUNT,
    "landvelger": WidgetKind.COUNTRY,
    "signature": WidgetKind.SIGNATURE,
    "survey": WidgetKind.MATRIX,
    "hidden": WidgetKind.HIDDEN,
    "password": WidgetKind.PASSWORD,
}
SECTION_TYPES = frozenset({"panel", "fieldset", "navSkjemagruppe", "well"})
GROUP_TYPES = frozenset({"container", "row"})
REPEAT_TYPES = frozenset({"datagrid", "editgrid"})
CONTENT_TYPES = frozenset({"htmlelement", "content", "alertstripe", "image", "accordion"})
KNOWN_TYPES = (
    FIELD_KINDS.keys()
    | SECTION_TYPES
    | GROUP_TYPES
    | REPEAT_TYPES
    | CONTENT_TYPES
    | {"columns", "table", "tabs"}
)

# Form-level export bookkeeping: ids, timestamps, access lists, editor state (NAV redacts the names).
FORM_METADATA_KEYS = frozenset(
    {
        "_id", "id", "_vid", "created", "modified", "owner", "project", "machineName", "revisions",
        "submissionRevisions", "revision", "access", "submissionAccess", "createdAt", "createdBy",
        "changedAt", "changedBy", "publishedAt", "publishedBy", "publishedLanguages", "status",
    }
)  # fmt: skip
PROPERTIES_METADATA_KEYS = frozenset(
    {"modified", "modifiedBy", "published", "publishedBy", "unpublished", "unpublishedBy"}
)

# Values the Form.io builder writes for every component; equal to the platform default, so they say nothing.
_BUILDER_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "placeholder": ("",), "prefix": ("",), "suffix": ("",), "customClass": ("",), "protected": (False,),
    "unique": (False,), "persistent": (True,), "hidden": (False,), "clearOnHide": (True,),
    "refreshOn": ("",), "redrawOn": ("",), "modalEdit": (False,), "dataGridLabel": (False,),
    "labelPosition": ("top",), "errorLabel": ("",), "tooltip": ("",), "hideLabel": (False,),
    "tabindex": ("",), "disabled": (False,), "autofocus": (False,), "dbIndex": (False,),
    "customDefaultValue": ("",), "calculateServer": (False,), "widget": (None, {"type": "input"}),
    "attributes": ({},), "allowCalculateOverride": (False,), "encrypted": (False,),
    "showCharCount": (False,), "showWordCount": (False,), "properties": ({},), "allowMultipleMasks": (False,),
    "addons": ([],), "tags": ([],), "logic": ([],), "errors": ("",), "labelWidth": ("",),
    "labelMargin": ("",), "lazyLoad": (False,), "inputFormat": ("plain",), "truncateMultipleSpaces": (False,),
    "displayMask": ("",), "inputMask": ("",), "mask": (False,), "descriptionPosition": ("",),
    "validateOn": ("change",), "tableView": (False,), "conditional": ({},), "customConditional": ("",),
    "calculateValue": ("",), "multiple": (False,), "defaultValue": (None,), "description": ("",),
    "tree": (False,), "theme": ("default",), "breadcrumb": ("default",), "collapsible": (False,),
    "spellcheck": (True,),
}  # fmt: skip
_EMPTY_VALIDATE: dict[str, tuple[Any, ...]] = {
    "required": (False,), "custom": ("",), "customPrivate": (False,), "strictDateValidation": (False,),
    "multiple": (False,), "unique": (False,), "minLength": ("",), "maxLength": ("",), "pattern": ("",),
    "customMessage": ("",), "json": ("",), "min": ("",), "max": ("",), "onlyAvailableItems": (False,),
    "minWords": ("",), "maxWords": ("",), "digitsOnly": (False,), "step": ("any",), "integer": ("",),
    "minYear": ("",), "maxYear": ("",), "minSelectedCount": ("",), "maxSelectedCount": ("",),
}  # fmt: skip
_JS_DATA_REFERENCE = re.compile(r"\b(?:data|row)\.([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)")
_JS_BRACKET_REFERENCE = re.compile(r"\b(?:data|row)\[['\"]([^'\"]+)['\"]\]")


def import_formio(doc: dict[str, Any], *, key: str | None = None) -> FormDefinition:
    """Read a Form.io form (NAV dialect included): wizard pages, panels, grids, custom types, logic."""
    if not isinstance(doc, dict):
        raise DefinitionError("a Form.io definition must be an object")
    components = doc.get("components")
    if not isinstance(components, list):
        raise DefinitionError("expected an array of components", path="$.components")
    rest = dict(doc)
    del rest["components"]
    title = rest.pop("title", "")
    if not isinstance(title, str):
        raise DefinitionError("expected a string", path="$.title")
    metadata = {name: rest.pop(name) for name in FORM_METADATA_KEYS if name in rest}
    properties = rest.get("properties")
    if isinstance(properties, dict):
        volatile = {name: value for name, value in properties.items() if name in PROPERTIES_METADATA_KEYS}
        if volatile:
            metadata["properties"] = volatile
            rest["properties"] = {n: v for n, v in properties.items() if n not in PROPERTIES_METADATA_KEYS}
    wizard = _is_wizard(rest.get("display"), components)
    layout = [
        _node(component, f"$.components[{i}]", page=wizard and _type_of(component) == "panel")
        for i, component in enumerate(components)
    ]
    return FormDefinition(
        key=key or _form_key(doc),
        title=title,
        source_format=SourceFormat.FORMIO,
        layout=layout,
        extras=rest,
        metadata=metadata,
    )


def _is_wizard(display: Any, components: list[Any]) -> bool:
    # NAV's forms API drops `display`; its forms are all wizards, one top-level panel per page.
    if display is None:
        return bool(components) and all(_type_of(c) == "panel" for c in components)
    return bool(display == "wizard")


def _form_key(doc: dict[str, Any]) -> str:
    properties = doc.get("properties")
    number = properties.get("skjemanummer") if isinstance(properties, dict) else None
    for candidate in (doc.get("path"), doc.get("name"), number, doc.get("machineName"), doc.get("title")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    raise DefinitionError("the form has no path, name or title to take its key from; pass a key")


def _type_of(component: Any) -> Any:
    return component.get("type") if isinstance(component, dict) else None


def _node(component: Any, path: str, *, page: bool = False) -> LayoutNode:
    if not isinstance(component, dict):
        raise DefinitionError("expected a component object", path=path)
    source_type = component.get("type")
    if not isinstance(source_type, str) or not source_type:
        raise DefinitionError("component has no type", path=path)
    if source_type not in KNOWN_TYPES:
        # Unknown types keep every property as written: their defaults are not Form.io's to judge.
        rest = {name: value for name, value in component.items() if name != "type"}
        if isinstance(rest.get("components"), list):
            return _container(rest, source_type, path, page=page)
        return _field(rest, source_type, WidgetKind.CUSTOM, path)
    rest = _without_defaults(component)
    rest.pop("type")
    if source_type in CONTENT_TYPES:
        return _content(rest, source_type)
    if source_type in FIELD_KINDS:
        return _field(rest, source_type, FIELD_KINDS[source_type], path)
    if source_type == "columns" and isinstance(rest.get("columns"), list):
        return _columns(rest, source_type, path)
    if source_type == "table" and isinstance(rest.get("rows"), list):
        return _table(rest, source_type, path)
    if source_type == "tabs" and isinstance(rest.get("components"), list):
        return _tabs(rest, source_type, path)
    return _container(rest, source_type, path, page=page)


def _without_defaults(component: dict[str, Any]) -> dict[str, Any]:
    rest = {
        name: value
        for name, value in component.items()
        if not (name in _BUILDER_DEFAULTS and _is_one_of(value, _BUILDER_DEFAULTS[name]))
    }
    validate = rest.get("validate")
    if isinstance(validate, dict):
        validate = {
            n: v
            for n, v in validate.items()
            if not (n in _EMPTY_VALIDATE and _is_one_of(v, _EMPTY_VALIDATE[n]))
        }
        if validate:
            rest["validate"] = validate
        else:
            del rest["validate"]
    overlay = rest.get("overlay")
    if isinstance(overlay, dict) and all(value == "" for value in overlay.values()):
        del rest["overlay"]
    return rest


def _is_one_of(value: Any, defaults: tuple[Any, ...]) -> bool:
    # bool is an int in Python: compare types too, so 0 is not taken for False.
    return any(type(value) is type(default) and value == default for default in defaults)


def _pop_str(rest: dict[str, Any], name: str) -> str | None:
    value = rest.get(name)
    if isinstance(value, str):
        del rest[name]
        return value
    return None


def _pop_input_flag(rest: dict[str, Any], *, holds_data: bool) -> None:
    # The flag is implied by the node kind; keep it only where the source contradicts that.
    if rest.get("input") is holds_data:
        del rest["input"]


def _content(rest: dict[str, Any], source_type: str) -> ContentNode:
    _pop_input_flag(rest, holds_data=False)
    key = _pop_str(rest, "key")
    title = _pop_str(rest, "title")
    if source_type == "accordion":
        title = _pop_str(rest, "label") or title
    text_field = "html" if source_type == "content" else "content"
    text = _pop_str(rest, text_field) or ""
    conditions = _conditions(rest)
    return ContentNode(
        key=key,
        source_type=source_type,
        title=title,
        text=text,
        html=source_type != "image",
        conditions=conditions,
        extras=rest,
    )


def _field(rest: dict[str, Any], source_type: str, kind: WidgetKind, path: str) -> FieldNode:
    key = rest.pop("key", None)
    if not isinstance(key, str) or not key:
        raise DefinitionError(f"a {source_type} component needs a non-empty string key", path=path)
    _pop_input_flag(rest, holds_data=True)
    label = _pop_str(rest, "label") or ""
    help_text = _pop_str(rest, "description")
    placeholder = _pop_str(rest, "placeholder")
    default = rest.pop("defaultValue", None)
    multiple = rest.pop("multiple", False) is True
    required, validation = _validation(rest)
    options = _options(rest, f"{path}")
    conditions = _conditions(rest)
    return FieldNode(
        key=key,
        source_type=source_type,
        label=label,
        kind=kind,
        required=required,
        validation=validation,
        options=options,
        help_text=help_text or None,
        placeholder=placeholder or None,
        default=default,
        multiple=multiple,
        conditions=conditions,
        extras=rest,
    )


def _children(rest: dict[str, Any], path: str) -> list[LayoutNode]:
    components = rest.pop("components", [])
    if not isinstance(components, list):
        raise DefinitionError("expected an array of components", path=f"{path}.components")
    return [_node(child, f"{path}.components[{i}]") for i, child in enumerate(components)]


def _container(
    rest: dict[str, Any], source_type: str, path: str, *, page: bool
) -> PageNode | SectionNode | GroupNode | RepeatNode:
    children = _children(rest, path)
    key = _pop_str(rest, "key")
    conditions = _conditions(rest)
    if source_type in REPEAT_TYPES:
        _pop_input_flag(rest, holds_data=True)
        required, validation = _validation(rest)
        return RepeatNode(
            key=key,
            source_type=source_type,
            label=_pop_str(rest, "label") or "",
            required=required,
            min_items=validation.min_length,
            max_items=validation.max_length,
            children=children,
            conditions=conditions,
            extras=rest,
        )
    if source_type in GROUP_TYPES or rest.get("tree") is True:
        _pop_input_flag(rest, holds_data=True)
        return GroupNode(
            key=key,
            source_type=source_type,
            title=_pop_str(rest, "label"),
            children=children,
            conditions=conditions,
            extras=rest,
        )
    _pop_input_flag(rest, holds_data=False)
    title = _pop_str(rest, "title") or _pop_str(rest, "legend")
    description = _pop_str(rest, "description")
    node_class = PageNode if page else SectionNode
    return node_class(
        key=key,
        source_type=source_type,
        title=title,
        description=description or None,
        children=children,
        conditions=conditions,
        extras=rest,
    )


def _columns(rest: dict[str, Any], source_type: str, path: str) -> ColumnsNode:
    columns = []
    for i, column in enumerate(rest.pop("columns")):
        column_path = f"{path}.columns[{i}]"
        if not isinstance(column, dict):
            raise DefinitionError("expected a column object", path=column_path)
        column_rest = dict(column)
        children = _children(column_rest, column_path)
        width = column_rest.pop("width", None)
        if not isinstance(width, int) or isinstance(width, bool):
            if width is not None:
                column_rest["width"] = width
            width = None
        columns.append(ColumnNode(width=width, children=children, extras=column_rest))
    return ColumnsNode(
        key=_pop_str(rest, "key"),
        source_type=source_type,
        title=_pop_str(rest, "label"),
        children=list(columns),
        conditions=_conditions(rest),
        extras=_drop_input(rest),
    )


def _table(rest: dict[str, Any], source_type: str, path: str) -> SectionNode:
    rows: list[LayoutNode] = []
    for r, row in enumerate(rest.pop("rows")):
        if not isinstance(row, list):
            raise DefinitionError("expected an array of cells", path=f"{path}.rows[{r}]")
        cells: list[LayoutNode] = []
        for c, cell in enumerate(row):
            cell_path = f"{path}.rows[{r}][{c}]"
            if not isinstance(cell, dict):
                raise DefinitionError("expected a cell object", path=cell_path)
            cell_rest = dict(cell)
            cells.append(ColumnNode(children=_children(cell_rest, cell_path), extras=cell_rest))
        rows.append(ColumnsNode(children=cells))
    return SectionNode(
        key=_pop_str(rest, "key"),
        source_type=source_type,
        title=_pop_str(rest, "label"),
        children=rows,
        conditions=_conditions(rest),
        extras=_drop_input(rest),
    )


def _tabs(rest: dict[str, Any], source_type: str, path: str) -> SectionNode:
    tabs: list[LayoutNode] = []
    for i, tab in enumerate(rest.pop("components")):
        tab_path = f"{path}.components[{i}]"
        if not isinstance(tab, dict):
            raise DefinitionError("expected a tab object", path=tab_path)
        tab_rest = dict(tab)
        children = _children(tab_rest, tab_path)
        tabs.append(
            SectionNode(
                key=_pop_str(tab_rest, "key"),
                title=_pop_str(tab_rest, "label"),
                children=children,
                extras=tab_rest,
            )
        )
    return SectionNode(
        key=_pop_str(rest, "key"),
        source_type=source_type,
        title=_pop_str(rest, "label"),
        children=tabs,
        conditions=_conditions(rest),
        extras=_drop_input(rest),
    )


def _drop_input(rest: dict[str, Any]) -> dict[str, Any]:
    _pop_input_flag(rest, holds_data=False)
    return rest


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _validation(rest: dict[str, Any]) -> tuple[bool, Validation]:
    """Pop `validate`; what the model cannot hold stays in rest['validate']."""
    validate = rest.pop("validate", None)
    if not isinstance(validate, dict):
        if validate is not None:
            rest["validate"] = validate
        return False, Validation()
    left = dict(validate)
    required = left.pop("required", False)
    if not isinstance(required, bool):
        left["required"] = required
        required = False
    converted: dict[str, Any] = {}
    for source, target, convert in (
        ("minLength", "min_length", _as_int),
        ("maxLength", "max_length", _as_int),
        ("min", "minimum", _as_float),
        ("max", "maximum", _as_float),
        ("minSelectedCount", "min_items", _as_int),
        ("maxSelectedCount", "max_items", _as_int),
    ):
        if source in left and (value := convert(left[source])) is not None:
            converted[target] = value
            del left[source]
    for source, target in (("pattern", "pattern"), ("custom", "custom"), ("customMessage", "message")):
        if isinstance(left.get(source), str):
            converted[target] = left.pop(source)
    if left:
        rest["validate"] = left
    return required, Validation(**converted)


def _options(rest: dict[str, Any], path: str) -> list[Option]:
    values = rest.get("values")
    data = rest.get("data")
    if isinstance(values, list) and all(isinstance(v, dict) for v in values):
        rest.pop("values")
        if rest.get("dataSrc") == "values":
            rest.pop("dataSrc")
        return [_option(v) for v in values]
    if isinstance(data, dict) and isinstance(data.get("values"), list):
        listed = data["values"]
        if all(isinstance(v, dict) for v in listed):
            remaining = {n: v for n, v in data.items() if n != "values"}
            if remaining:
                rest["data"] = remaining
            else:
                rest.pop("data")
            if rest.get("dataSrc") == "values":
                rest.pop("dataSrc")
            return [_option(v) for v in listed]
    return []


def _option(value: dict[str, Any]) -> Option:
    extras = {n: v for n, v in value.items() if n not in ("value", "label")}
    label = value.get("label", "")
    if not isinstance(label, str):
        extras["label"] = label
        label = ""
    return Option(value=value.get("value"), label=label, extras=extras)


def _conditions(rest: dict[str, Any]) -> list[Condition]:
    """Pop conditional, customConditional, logic and calculateValue into structured rules."""
    conditions: list[Condition] = []
    conditional = rest.pop("conditional", None)
    if isinstance(conditional, dict):
        simple = _simple_conditional(conditional)
        if simple is not None:
            conditions.append(simple)
        elif any(value not in (None, "", [], {}) for value in conditional.values()):
            rest["conditional"] = conditional
    elif conditional is not None:
        rest["conditional"] = conditional
    custom = rest.get("customConditional")
    if isinstance(custom, str) and custom.strip():
        del rest["customConditional"]
        conditions.append(_javascript(ConditionEffect.SHOW, custom))
    logic = rest.get("logic")
    if isinstance(logic, list) and all(isinstance(item, dict) for item in logic):
        del rest["logic"]
        conditions.extend(_logic_rule(item) for item in logic)
    calculated = rest.get("calculateValue")
    if isinstance(calculated, str) and calculated.strip():
        del rest["calculateValue"]
        conditions.append(_javascript(ConditionEffect.SET_VALUE, calculated))
    elif isinstance(calculated, dict) and calculated:
        del rest["calculateValue"]
        conditions.append(
            Condition(
                effect=ConditionEffect.SET_VALUE,
                depends_on=_json_logic_vars(calculated),
                json_logic=calculated,
                language="jsonlogic",
            )
        )
    return conditions


def _simple_conditional(conditional: dict[str, Any]) -> Condition | None:
    show = conditional.get("show")
    effect = ConditionEffect.SHOW if str(show).lower() == "true" else ConditionEffect.HIDE
    exact = show in (True, False, "true", "false")
    json_logic = conditional.get("json")
    if isinstance(json_logic, dict) and json_logic:
        return Condition(
            effect=ConditionEffect.SHOW,
            depends_on=_json_logic_vars(json_logic),
            json_logic=json_logic,
            language="jsonlogic",
            raw=conditional,
        )
    when = conditional.get("when")
    if isinstance(when, str) and when:
        return Condition(
            effect=effect,
            depends_on=[when],
            when=when,
            operator="eq",
            value=conditional.get("eq"),
            raw=None if exact and set(conditional) <= {"show", "when", "eq", "json"} else conditional,
        )
    rules = conditional.get("conditions")
    if isinstance(rules, list) and rules:
        depends_on = [
            r["component"] for r in rules if isinstance(r, dict) and isinstance(r.get("component"), str)
        ]
        single = rules[0] if len(rules) == 1 and isinstance(rules[0], dict) else {}
        operator = _RULE_OPERATORS.get(single.get("operator"))
        when = single.get("component") if isinstance(single.get("component"), str) else None
        if operator is not None and when:
            return Condition(
                effect=effect,
                depends_on=[when],
                when=when,
                operator=operator,
                value=single.get("value") if operator in ("eq", "neq") else None,
                raw=conditional,
            )
        return Condition(effect=effect, depends_on=_unique(depends_on), raw=conditional)
    return None


# Form.io 5 `conditional.conditions` operators that a browser can evaluate as a simple comparison.
_RULE_OPERATORS: dict[Any, Literal["eq", "neq", "truthy", "falsy"]] = {
    "isEqual": "eq",
    "isNotEqual": "neq",
    "isNotEmpty": "truthy",
    "isEmpty": "falsy",
}


def _javascript(effect: ConditionEffect, expression: str) -> Condition:
    return Condition(
        effect=effect, depends_on=_javascript_refs(expression), expression=expression, language="javascript"
    )


_ACTION_EFFECTS: dict[tuple[str, bool], ConditionEffect] = {
    ("hidden", True): ConditionEffect.HIDE,
    ("hidden", False): ConditionEffect.SHOW,
    ("disabled", True): ConditionEffect.DISABLE,
    ("disabled", False): ConditionEffect.ENABLE,
    ("validate.required", True): ConditionEffect.REQUIRE,
}


def _logic_rule(item: dict[str, Any]) -> Condition:
    trigger = item.get("trigger")
    if not isinstance(trigger, dict):
        trigger = {}
    trigger_type = trigger.get("type")
    script = trigger.get("javascript") if trigger_type == "javascript" else None
    expression = script if isinstance(script, str) and script else None
    json_logic = trigger.get("json") if trigger_type == "json" else None
    simple = trigger.get("simple") if trigger_type == "simple" else None
    depends_on: list[str] = []
    when: str | None = None
    value: Any = None
    if expression is not None:
        depends_on = _javascript_refs(expression)
    if json_logic is not None:
        depends_on = _json_logic_vars(json_logic)
    if isinstance(simple, dict) and isinstance(simple.get("when"), str) and simple["when"]:
        when = simple["when"]
        value = simple.get("eq")
        depends_on = [when]
    language = "javascript" if expression else ("jsonlogic" if json_logic is not None else None)
    return Condition(
        effect=_logic_effect(item.get("actions")),
        depends_on=depends_on,
        when=when,
        operator="eq" if when else None,
        value=value,
        expression=expression,
        language=language,
        json_logic=json_logic,
        raw=item,
    )


def _logic_effect(actions: Any) -> ConditionEffect:
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return ConditionEffect.OTHER
    action = actions[0]
    if action.get("type") == "value":
        return ConditionEffect.SET_VALUE
    if action.get("type") == "property" and isinstance(action.get("property"), dict):
        name = action["property"].get("value")
        state = action.get("state")
        if isinstance(name, str) and isinstance(state, bool | str):
            return _ACTION_EFFECTS.get((name, str(state).lower() == "true"), ConditionEffect.OTHER)
    return ConditionEffect.OTHER


def _javascript_refs(expression: str) -> list[str]:
    found = [m.group(1) for m in _JS_DATA_REFERENCE.finditer(expression)]
    found += [m.group(1) for m in _JS_BRACKET_REFERENCE.finditer(expression)]
    return _unique(found)


def _json_logic_vars(logic: Any) -> list[str]:
    found: list[str] = []
    stack = [logic]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            var = value.get("var")
            if isinstance(var, str):
                found.append(var.removeprefix("data.").removeprefix("row."))
            elif isinstance(var, list) and var and isinstance(var[0], str):
                found.append(var[0].removeprefix("data.").removeprefix("row."))
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return _unique(found)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
