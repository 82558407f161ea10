"""Import SurveyJS JSON (pages, panels, dynamic panels, matrices, custom question types) into the model."""

from __future__ import annotations

import re
from typing import Any, TypeGuard

from ingest.errors import DefinitionError
from ingest.model import (
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

LANGUAGE = "surveyjs"
MAX_DEPTH = 100
MAX_ELEMENTS = 20_000
ELEMENT_LISTS = ("pages", "elements", "questions", "templateElements")

# Question types that hold no data: static text, images, help boxes (BC custom types included).
CONTENT_TYPES = frozenset({"html", "image", "infotext", "helptext", "infotexttitle"})

# SurveyJS type names are matched case-insensitively, as SurveyJS itself does.
KIND_BY_TYPE: dict[str, WidgetKind] = {
    "text": WidgetKind.TEXT,
    "comment": WidgetKind.TEXTAREA,
    "dropdown": WidgetKind.SELECT,
    "tagbox": WidgetKind.SELECT,
    "radiogroup": WidgetKind.RADIO,
    "imagepicker": WidgetKind.RADIO,
    "checkbox": WidgetKind.CHECKBOX_GROUP,
    "boolean": WidgetKind.CHECKBOX,
    "file": WidgetKind.FILE,
    "rating": WidgetKind.RATING,
    "signaturepad": WidgetKind.SIGNATURE,
    "matrix": WidgetKind.MATRIX,
    "matrixdropdown": WidgetKind.MATRIX,
    "expression": WidgetKind.TEXT,
    "yesno": WidgetKind.YES_NO,
    "personname": WidgetKind.PERSON_NAME,
    "address": WidgetKind.ADDRESS,
    "customdatetime": WidgetKind.DATETIME,
    "textbeforeinputnumber": WidgetKind.NUMBER,
}
MULTIPLE_TYPES = frozenset({"checkbox", "tagbox"})

KIND_BY_INPUT_TYPE: dict[str, WidgetKind] = {
    "text": WidgetKind.TEXT,
    "date": WidgetKind.DATE,
    "datetime": WidgetKind.DATETIME,
    "datetime-local": WidgetKind.DATETIME,
    "month": WidgetKind.MONTH,
    "time": WidgetKind.TIME,
    "tel": WidgetKind.PHONE,
    "email": WidgetKind.EMAIL,
    "number": WidgetKind.NUMBER,
    "range": WidgetKind.NUMBER,
    "url": WidgetKind.URL,
    "password": WidgetKind.PASSWORD,
}

QUESTION_LIMITS = {"maxLength": "max_length", "minLength": "min_length", "min": "minimum", "max": "maximum"}
VALIDATOR_LIMITS = {
    "numeric": {"minValue": "minimum", "maxValue": "maximum"},
    "text": {"minLength": "min_length", "maxLength": "max_length"},
    "answercount": {"minCount": "min_items", "maxCount": "max_items"},
    "regex": {"regex": "pattern"},
}
INTEGER_LIMITS = frozenset({"min_length", "max_length", "min_items", "max_items"})

CONDITION_EFFECTS = {
    "visibleIf": ConditionEffect.SHOW,
    "enableIf": ConditionEffect.ENABLE,
    "requiredIf": ConditionEffect.REQUIRE,
}

# Survey-level strings the user reads; they go to FormDefinition.texts.
SURVEY_TEXTS = frozenset(
    {
        "completedHtml",
        "completedBeforeHtml",
        "loadingHtml",
        "requiredText",
        "pagePrevText",
        "pageNextText",
        "completeText",
        "previewText",
        "editText",
        "startSurveyText",
        "questionTitleTemplate",
    }
)
# Service ids and editor state: kept in metadata, never hashed.
SURVEY_VOLATILE = frozenset({"$schema", "surveyId", "surveyPostId", "clientId", "creatorState"})

_REFERENCE = re.compile(r"\{([^{}]+)\}")
_VALUE = r"(?P<value>'[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?|true|false)"
_SIMPLE_COMPARISON = re.compile(
    r"^\s*\(?\s*\{(?P<when>[^{}]+)\}\s*(?:(?P<op>==|=|<>|!=)\s*"
    + _VALUE
    + r"|(?P<unary>notempty|empty))?\s*\)?\s*$",
    re.IGNORECASE,
)
_SIMPLE_NEGATION = re.compile(r"^\s*!\s*\(?\s*\{(?P<when>[^{}]+)\}\s*\)?\s*$")


def import_surveyjs(doc: dict[str, Any], *, key: str | None = None) -> FormDefinition:
    """Convert a parsed SurveyJS survey into a FormDefinition; raises DefinitionError on malformed input."""
    if not isinstance(doc, dict):
        raise DefinitionError("a SurveyJS survey must be a JSON object")
    if not any(name in doc for name in ("pages", "elements", "questions")):
        raise DefinitionError("not a SurveyJS survey: no `pages`, `elements` or `questions`")
    _check_size(doc)
    extras: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    texts: dict[str, str] = {}
    layout: list[LayoutNode] = []
    if "pages" in doc:
        pages = _list(doc["pages"], "$.pages")
        layout.extend(_page(page, f"$.pages[{index}]") for index, page in enumerate(pages))
    for name in ("elements", "questions"):
        if name in doc:
            layout.extend(_elements(doc[name], f"$.{name}", depth=1))
    for prop, value in doc.items():
        if prop in ("pages", "elements", "questions", "title", "description", "triggers", "calculatedValues"):
            continue
        if prop in SURVEY_VOLATILE:
            metadata[prop] = value
        elif prop in SURVEY_TEXTS and (text := _text(value)) is not None:
            texts[prop] = text
            if not isinstance(value, str):
                extras[prop] = value
        else:
            extras[prop] = value
    title = _text(doc.get("title")) or ""
    _keep_localised(doc, ("title", "description"), extras)
    return FormDefinition(
        key=key or _slug(title) or "survey",
        title=title,
        description=_text(doc.get("description")),
        source_format=SourceFormat.SURVEYJS,
        texts=texts,
        layout=layout,
        logic=_survey_logic(doc),
        extras=extras,
        metadata=metadata,
    )


def parse_expression(effect: ConditionEffect, expression: Any, *, raw: Any = None) -> Condition:
    """A SurveyJS expression as a Condition: references parsed out, simple comparisons made evaluable."""
    if not isinstance(expression, str):
        return Condition(effect=effect, language=LANGUAGE, raw=expression if raw is None else raw)
    depends_on = list(dict.fromkeys(ref.strip() for ref in _REFERENCE.findall(expression)))
    condition = Condition(
        effect=effect,
        depends_on=depends_on,
        expression=expression,
        language=LANGUAGE,
        raw=expression if raw is None else raw,
    )
    if match := _SIMPLE_COMPARISON.match(expression):
        condition.when = match["when"].strip()
        if match["op"]:
            condition.operator = "eq" if match["op"] in ("=", "==") else "neq"
            condition.value = _literal(match["value"])
        else:
            condition.operator = "falsy" if (match["unary"] or "").lower() == "empty" else "truthy"
    elif match := _SIMPLE_NEGATION.match(expression):
        condition.when = match["when"].strip()
        condition.operator = "falsy"
    return condition


def _check_size(doc: dict[str, Any]) -> None:
    """Refuse absurd surveys before building anything: too many elements or too deep."""
    count = 0
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DefinitionError(f"elements nested deeper than {MAX_DEPTH} levels")
        for name in ELEMENT_LISTS:
            children = node.get(name)
            if isinstance(children, list):
                count += len(children)
                stack.extend((child, depth + 1) for child in children if isinstance(child, dict))
        if count > MAX_ELEMENTS:
            raise DefinitionError(f"more than {MAX_ELEMENTS} elements")


def _page(page: Any, path: str) -> PageNode:
    element = _object(page, path)
    children: list[LayoutNode] = []
    for name in ("elements", "questions"):
        if name in element:
            children.extend(_elements(element[name], f"{path}.{name}", depth=1))
    extras = _leftovers(
        element, {"name", "title", "description", "elements", "questions", *CONDITION_EFFECTS}
    )
    _keep_localised(element, ("title", "description"), extras)
    return PageNode(
        key=_name(element.get("name")),
        source_type="page",
        title=_text(element.get("title")),
        description=_text(element.get("description")),
        children=children,
        conditions=_conditions(element),
        extras=extras,
    )


def _elements(elements: Any, path: str, *, depth: int) -> list[LayoutNode]:
    if depth > MAX_DEPTH:
        raise DefinitionError(f"elements nested deeper than {MAX_DEPTH} levels", path=path)
    return [_element(item, f"{path}[{index}]", depth) for index, item in enumerate(_list(elements, path))]


def _element(item: Any, path: str, depth: int) -> LayoutNode:
    element = _object(item, path)
    source_type = element.get("type")
    if not isinstance(source_type, str) or not source_type:
        raise DefinitionError("element has no `type` string", path=path)
    kind = source_type.lower()
    if kind == "panel":
        return _panel(element, path, depth)
    if kind == "paneldynamic":
        return _panel_dynamic(element, path, depth)
    if kind == "matrixdynamic":
        return _matrix_dynamic(element, path)
    if kind == "multipletext":
        return _multiple_text(element, path)
    if kind in CONTENT_TYPES or (kind == "expression" and "expression" not in element):
        return _content(element, path)
    return _field(element, path)


def _panel(element: dict[str, Any], path: str, depth: int) -> SectionNode:
    children = _elements(element.get("elements", []), f"{path}.elements", depth=depth + 1)
    if "questions" in element:
        children.extend(_elements(element["questions"], f"{path}.questions", depth=depth + 1))
    extras = _leftovers(
        element, {"type", "name", "title", "description", "elements", "questions", *CONDITION_EFFECTS}
    )
    _keep_localised(element, ("title", "description"), extras)
    return SectionNode(
        key=_name(element.get("name")),
        source_type=element["type"],
        title=_text(element.get("title")),
        description=_text(element.get("description")),
        children=children,
        conditions=_conditions(element),
        extras=extras,
    )


def _panel_dynamic(element: dict[str, Any], path: str, depth: int) -> RepeatNode:
    children = _elements(element.get("templateElements", []), f"{path}.templateElements", depth=depth + 1)
    consumed = {"type", "name", "valueName", "title", "description", "templateElements", "isRequired"}
    extras = _repeat_extras(element, consumed | {"minPanelCount", "maxPanelCount"})
    title = _text(element.get("title"))
    return RepeatNode(
        key=_data_key(element, path),
        source_type=element["type"],
        title=title,
        label=title or "",
        description=_text(element.get("description")),
        required=element.get("isRequired") is True,
        min_items=_int(element.get("minPanelCount")),
        max_items=_int(element.get("maxPanelCount")),
        children=children,
        conditions=_conditions(element),
        extras=extras,
    )


def _matrix_dynamic(element: dict[str, Any], path: str) -> RepeatNode:
    """A matrixdynamic is a table whose rows the user adds: one repeat, its columns the fields."""
    columns = _list(element.get("columns", []), f"{path}.columns")
    default_cell = element.get("cellType") if isinstance(element.get("cellType"), str) else "dropdown"
    children: list[LayoutNode] = []
    for index, column in enumerate(columns):
        column_path = f"{path}.columns[{index}]"
        cell = _object(column, column_path)
        cell_type = cell.get("cellType") if isinstance(cell.get("cellType"), str) else default_cell
        as_question = {"choices": element["choices"]} if "choices" in element else {}
        as_question.update(cell)
        children.append(_field(as_question, column_path, source_type="matrixdropdowncolumn", type_=cell_type))
    consumed = {"type", "name", "valueName", "title", "description", "columns", "isRequired"}
    extras = _repeat_extras(element, consumed | {"minRowCount", "maxRowCount"})
    title = _text(element.get("title"))
    return RepeatNode(
        key=_data_key(element, path),
        source_type=element["type"],
        title=title,
        label=title or "",
        description=_text(element.get("description")),
        required=element.get("isRequired") is True,
        min_items=_int(element.get("minRowCount")),
        max_items=_int(element.get("maxRowCount")),
        children=children,
        conditions=_conditions(element),
        extras=extras,
    )


def _multiple_text(element: dict[str, Any], path: str) -> GroupNode:
    """A multipletext answer is an object, one text box per item."""
    items = _list(element.get("items", []), f"{path}.items")
    children: list[LayoutNode] = [
        _field(
            _object(item, f"{path}.items[{index}]"),
            f"{path}.items[{index}]",
            source_type="multipletextitem",
            type_="text",
        )
        for index, item in enumerate(items)
    ]
    extras = _leftovers(
        element, {"type", "name", "valueName", "title", "description", "items", *CONDITION_EFFECTS}
    )
    _keep_localised(element, ("title", "description"), extras)
    return GroupNode(
        key=_data_key(element, path),
        source_type=element["type"],
        title=_text(element.get("title")),
        description=_text(element.get("description")),
        children=children,
        conditions=_conditions(element),
        extras=extras,
    )


def _content(element: dict[str, Any], path: str) -> ContentNode:
    kind = element["type"].lower()
    title = _text(element.get("title"))
    if kind == "html":
        body_prop = "html"
    elif kind == "image":
        body_prop = "altText"
    elif "body" in element:
        body_prop = "body"
    else:
        # Info boxes without a body carry their text in the (hidden) title.
        body_prop, title = "title", None
    body = _text(element.get(body_prop)) or ""
    extras = _leftovers(element, {"type", "name", "title", body_prop, *CONDITION_EFFECTS})
    _keep_localised(element, ("title", body_prop), extras)
    return ContentNode(
        key=_name(element.get("name")),
        source_type=element["type"],
        title=title,
        text=body,
        html=kind != "image",
        conditions=_conditions(element),
        extras=extras,
    )


def _field(
    element: dict[str, Any], path: str, *, source_type: str | None = None, type_: str | None = None
) -> FieldNode:
    question_type = (type_ or element["type"]).lower()
    kind = KIND_BY_TYPE.get(question_type, WidgetKind.CUSTOM)
    consumed = {"type", "name", "valueName", "title", "description", "isRequired", "defaultValue"}
    consumed |= {"placeHolder", "placeholder", "choices", *CONDITION_EFFECTS}
    input_type = element.get("inputType")
    if question_type == "text" and isinstance(input_type, str) and input_type.lower() in KIND_BY_INPUT_TYPE:
        kind = KIND_BY_INPUT_TYPE[input_type.lower()]
        consumed.add("inputType")
    choices = element.get("choices")
    if question_type == "matrix" and isinstance(element.get("columns"), list):
        # A single-choice matrix: every row picks one of the columns.
        choices = element.get("columns")
        consumed.add("columns")
    validation, validation_props, validator_rules = _validation(element)
    consumed |= validation_props
    conditions = _conditions(element) + validator_rules
    if question_type == "expression":
        conditions.append(parse_expression(ConditionEffect.SET_VALUE, element.get("expression")))
    extras = _leftovers(element, consumed)
    _keep_localised(element, ("title", "description", "placeHolder", "placeholder"), extras)
    if "choices" in element and not isinstance(element["choices"], list):
        extras["choices"] = element["choices"]
    key = _data_key(element, path)
    placeholder = element.get("placeHolder", element.get("placeholder"))
    return FieldNode(
        key=key,
        source_type=source_type or element["type"],
        label=_text(element.get("title")) or key,
        kind=kind,
        required=element.get("isRequired") is True,
        validation=validation,
        options=_options(choices),
        help_text=_text(element.get("description")),
        placeholder=_text(placeholder),
        default=element.get("defaultValue"),
        multiple=question_type in MULTIPLE_TYPES or element.get("allowMultiple") is True,
        conditions=conditions,
        extras=extras,
    )


def _validation(element: dict[str, Any]) -> tuple[Validation, set[str], list[Condition]]:
    """Limits set on the question and its `validators`; each validator is also kept whole as a rule."""
    values: dict[str, Any] = {}
    used: set[str] = set()
    for prop, field in QUESTION_LIMITS.items():
        value = element.get(prop)
        if _number(value):
            values[field] = int(value) if field in INTEGER_LIMITS else value
            used.add(prop)
    validators = element.get("validators")
    if not isinstance(validators, list) or not all(isinstance(item, dict) for item in validators):
        return Validation(**values), used, []
    rules: list[Condition] = []
    for validator in validators:
        rules.append(parse_expression(ConditionEffect.VALIDATE, validator.get("expression"), raw=validator))
        kind = str(validator.get("type", "")).lower()
        for prop, field in VALIDATOR_LIMITS.get(kind, {}).items():
            value = validator.get(prop)
            if field == "pattern" and isinstance(value, str):
                values.setdefault(field, value)
            elif _number(value):
                values.setdefault(field, int(value) if field in INTEGER_LIMITS else value)
        if kind == "email":
            values.setdefault("format", "email")
        if isinstance(validator.get("text"), str):
            values.setdefault("message", validator["text"])
    used.add("validators")
    return Validation(**values), used, rules


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _options(choices: Any) -> list[Option]:
    if not isinstance(choices, list):
        return []
    options: list[Option] = []
    for choice in choices:
        if isinstance(choice, dict):
            value = choice.get("value", choice.get("text"))
            extras = {prop: raw for prop, raw in choice.items() if prop not in ("value", "text")}
            if "text" in choice and not isinstance(choice["text"], str):
                extras["text"] = choice["text"]
            label = _text(choice.get("text"))
            options.append(Option(value=value, label=label or _plain(value), extras=extras))
        elif isinstance(choice, str) and "|" in choice:
            # Old SurveyJS shorthand: "value|text".
            value, _, label = choice.partition("|")
            options.append(Option(value=value, label=label, extras={"shorthand": choice}))
        else:
            options.append(Option(value=choice, label=_plain(choice)))
    return options


def _repeat_extras(element: dict[str, Any], consumed: set[str]) -> dict[str, Any]:
    extras = _leftovers(element, consumed | set(CONDITION_EFFECTS))
    _keep_localised(element, ("title", "description"), extras)
    return extras


def _conditions(element: dict[str, Any]) -> list[Condition]:
    return [
        parse_expression(effect, element[prop])
        for prop, effect in CONDITION_EFFECTS.items()
        if prop in element
    ]


def _survey_logic(doc: dict[str, Any]) -> list[Condition]:
    logic: list[Condition] = []
    for index, trigger in enumerate(_list(doc.get("triggers", []), "$.triggers")):
        rule = _object(trigger, f"$.triggers[{index}]")
        kind = str(rule.get("type", "")).lower()
        effect = ConditionEffect.SET_VALUE if kind in ("setvalue", "copyvalue") else ConditionEffect.OTHER
        if kind == "runexpression" and "setToName" in rule:
            effect = ConditionEffect.SET_VALUE
        logic.append(parse_expression(effect, rule.get("expression"), raw=rule))
    for index, calculated in enumerate(_list(doc.get("calculatedValues", []), "$.calculatedValues")):
        rule = _object(calculated, f"$.calculatedValues[{index}]")
        logic.append(parse_expression(ConditionEffect.SET_VALUE, rule.get("expression"), raw=rule))
    return logic


def _data_key(element: dict[str, Any], path: str) -> str:
    """A question's data key: `valueName` when set (several questions may share it), else `name`."""
    # An unnamed question (old surveys have them) is keyed by its JSON path, so it stays traceable.
    return _name(element.get("valueName")) or _name(element.get("name")) or path


def _leftovers(element: dict[str, Any], consumed: set[str]) -> dict[str, Any]:
    extras = {prop: value for prop, value in element.items() if prop not in consumed}
    if "valueName" in element and "valueName" in consumed:
        extras["name"] = element.get("name")
    return extras


def _keep_localised(element: dict[str, Any], props: tuple[str, ...], extras: dict[str, Any]) -> None:
    """Localised strings become their default text in the model; the full object stays in extras."""
    for prop in props:
        value = element.get(prop)
        if value is not None and not isinstance(value, str):
            extras[prop] = value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for locale in ("default", "en"):
            if isinstance(value.get(locale), str):
                return str(value[locale])
        # No default: the first locale by name, so the choice does not depend on key order.
        return next((value[locale] for locale in sorted(value) if isinstance(value[locale], str)), None)
    return _plain(value)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _name(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = _plain(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _literal(token: str) -> Any:
    if token[0] in "'\"":
        return token[1:-1]
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    return float(token) if "." in token else int(token)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise DefinitionError(f"expected a list, got {type(value).__name__}", path=path)
    return value


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DefinitionError(f"expected an object, got {type(value).__name__}", path=path)
    return value
