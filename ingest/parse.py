"""From raw bytes to a canonical FormDefinition: parse, detect the format, dispatch to its importer."""

from __future__ import annotations

import importlib
import json
import logging
import math
import re
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError

from ingest.errors import DefinitionError, ImporterFailure
from ingest.model import FormDefinition, SourceFormat

logger = logging.getLogger("pageforge.ingest")

DEFAULT_MAX_BYTES = 5_000_000
DEFAULT_MAX_DEPTH = 200

Importer = Callable[..., FormDefinition]

# Module and function of each importer; looked up by name so a missing importer is a clear error.
_IMPORTERS: dict[SourceFormat, tuple[str, str]] = {
    SourceFormat.FORMIO: ("ingest.formio", "import_formio"),
    SourceFormat.SURVEYJS: ("ingest.surveyjs", "import_surveyjs"),
    SourceFormat.JSONSCHEMA: ("ingest.jsonschema", "import_jsonschema"),
    SourceFormat.NATIVE: ("ingest.native", "import_native"),
}


def parse_document(
    raw: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """Parse JSON, or YAML when it is not JSON, within size and nesting limits."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        raise DefinitionError(f"definition is {size} bytes, more than the limit of {max_bytes} bytes")
    text = _decode(raw) if isinstance(raw, bytes) else raw
    if not text.strip():
        raise DefinitionError("definition is empty")
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except json.JSONDecodeError as json_error:
        _check_flow_depth(text, max_depth)
        doc = _parse_yaml_or_explain(text, json_error)
    check_document(doc, max_depth=max_depth)
    return doc


def check_document(doc: Any, *, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Raise DefinitionError when lists/objects nest deeper than max_depth, or a number is NaN or infinite
    (not JSON: an already parsed document may come from a lenient parser). Iterative, no recursion."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise _too_deep(max_depth)
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif isinstance(child, float) and not math.isfinite(child):
                raise DefinitionError(f"{child} is not valid JSON: numbers must be finite")


def detect_format(doc: Any) -> SourceFormat:
    """Which source format a parsed document is written in."""
    if not isinstance(doc, dict):
        raise DefinitionError(f"expected an object at the top level, got {_json_type(doc)}")
    for fmt in (SourceFormat.NATIVE, SourceFormat.FORMIO, SourceFormat.SURVEYJS, SourceFormat.JSONSCHEMA):
        if _LOOKS_LIKE[fmt](doc):
            return fmt
    raise DefinitionError(
        "format not recognised: expected Form.io (components/display), SurveyJS (pages/elements/questions), "
        "JSON Schema ($schema/properties/definitions) or native (layout with key/source_format); "
        f"top-level keys are {sorted(doc)[:12]}"
    )


def import_definition(
    doc: Any, *, format: SourceFormat | str | None = None, key: str | None = None
) -> FormDefinition:
    """Import a parsed document of the given (or detected) format into the canonical model."""
    fmt = _resolve_format(format) if format is not None else detect_format(doc)
    if not isinstance(doc, dict):
        raise DefinitionError(f"a {fmt.value} definition must be an object, got {_json_type(doc)}")
    if not _LOOKS_LIKE[fmt](doc):
        hint = _format_hint(doc)
        raise DefinitionError(f"not a {fmt.value} definition: {_EXPECTED[fmt]}{hint}")
    check_document(doc)
    importer = _importer(fmt)
    try:
        return importer(doc, key=key)
    except DefinitionError:
        raise
    except ValidationError as exc:
        raise _from_validation_error(exc) from exc
    except RecursionError:
        raise _too_deep(DEFAULT_MAX_DEPTH) from None
    except Exception as exc:  # an importer bug must still reach the user as a clear error, not a traceback
        logger.exception("the %s importer failed", fmt.value)
        raise ImporterFailure(
            f"the {fmt.value} importer could not read this definition ({type(exc).__name__}: {exc})"
        ) from exc


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            f"definition is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} is invalid"
        ) from None


_QUOTED = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\n]|'')*'")
_FLOW_BRACKET = re.compile(r"[\[\]{}]")


def _check_flow_depth(text: str, max_depth: int) -> None:
    """Refuse deep YAML flow nesting before the recursive YAML composer meets it."""
    depth = 0
    for bracket in _FLOW_BRACKET.findall(_QUOTED.sub("", text)):
        depth = depth + 1 if bracket in "[{" else max(depth - 1, 0)
        if depth > max_depth:
            raise _too_deep(max_depth)


def _reject_constant(name: str) -> Any:
    raise DefinitionError(f"{name} is not valid JSON")


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases: they are how YAML bombs expand, and definitions never need them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            mark = event.start_mark
            raise DefinitionError(
                f"YAML aliases are not allowed (alias at line {mark.line + 1}, column {mark.column + 1})"
            )
        return super().compose_node(parent, index)


def _parse_yaml_or_explain(text: str, json_error: json.JSONDecodeError) -> Any:
    # A document that opens like JSON is JSON: its error is the useful one, and YAML would only be slow.
    if text.lstrip()[:1] in ("{", "["):
        raise DefinitionError(
            f"invalid JSON: {json_error.msg} at line {json_error.lineno}, column {json_error.colno}"
        ) from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except RecursionError:
        raise _too_deep(DEFAULT_MAX_DEPTH) from None
    except yaml.YAMLError as yaml_error:
        mark = getattr(yaml_error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(yaml_error, "problem", None) or str(yaml_error)
        raise DefinitionError(f"neither JSON nor YAML: {problem}{where}") from None


def _too_deep(max_depth: int) -> DefinitionError:
    return DefinitionError(f"definition nests deeper than {max_depth} levels")


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__


def _resolve_format(format: SourceFormat | str) -> SourceFormat:
    try:
        return SourceFormat(format)
    except ValueError:
        known = ", ".join(f.value for f in SourceFormat)
        raise DefinitionError(f"unknown format {format!r}; expected one of {known}") from None


def _importer(fmt: SourceFormat) -> Importer:
    module_name, function_name = _IMPORTERS[fmt]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise DefinitionError(
            f"no importer for {fmt.value} is installed ({module_name} is missing)"
        ) from None
    importer: Importer = getattr(module, function_name)
    return importer


def _looks_like_native(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("layout"), list) and ("source_format" in doc or "key" in doc)


def _looks_like_formio(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("components"), list) or doc.get("display") in ("form", "wizard", "pdf")


def _looks_like_surveyjs(doc: dict[str, Any]) -> bool:
    return any(isinstance(doc.get(name), list) for name in ("pages", "elements", "questions"))


def _looks_like_jsonschema(doc: dict[str, Any]) -> bool:
    return (
        isinstance(doc.get("$schema"), str)
        or isinstance(doc.get("properties"), dict)
        or doc.get("type") == "object"
        or isinstance(doc.get("definitions"), dict)
        or isinstance(doc.get("$defs"), dict)
    )


_LOOKS_LIKE: dict[SourceFormat, Callable[[dict[str, Any]], bool]] = {
    SourceFormat.NATIVE: _looks_like_native,
    SourceFormat.FORMIO: _looks_like_formio,
    SourceFormat.SURVEYJS: _looks_like_surveyjs,
    SourceFormat.JSONSCHEMA: _looks_like_jsonschema,
}

_EXPECTED: dict[SourceFormat, str] = {
    SourceFormat.NATIVE: "expected a 'layout' array with 'key' and 'source_format'",
    SourceFormat.FORMIO: "expected a 'components' array",
    SourceFormat.SURVEYJS: "expected a 'pages', 'elements' or 'questions' array",
    SourceFormat.JSONSCHEMA: "expected '$schema', 'properties', 'definitions' or type 'object'",
}


def _format_hint(doc: dict[str, Any]) -> str:
    for fmt in (SourceFormat.NATIVE, SourceFormat.FORMIO, SourceFormat.SURVEYJS, SourceFormat.JSONSCHEMA):
        if _LOOKS_LIKE[fmt](doc):
            return f" (it looks like {fmt.value})"
    return f" (top-level keys are {sorted(doc)[:12]})"


def _from_validation_error(exc: ValidationError) -> DefinitionError:
    first = exc.errors()[0]
    path = "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"])
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return DefinitionError(f"{first['msg']}{more}", path=path)
