"""JSON Schema for tenant-authored schemas (run inputs, test expectations): every regular expression runs on RE2.

Python's ``re`` backtracks: ``"pattern": "^(a+)+$"`` against ``"a" * 48 + "!"`` runs for hours while
holding the GIL, freezing the whole process. RE2 matches in time linear in the input. Patterns RE2
cannot run (backreferences, lookaround) are refused when the definition is compiled, naming the field;
the validator class below then runs ``pattern``, ``patternProperties``, ``additionalProperties`` (which
consults ``patternProperties``) and ``format: regex`` on RE2. jsonschema's ``unevaluatedProperties``
also evaluates ``patternProperties``, with ``re`` and out of reach, so a schema may not use both.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import re2
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema._utils import extras_msg
from jsonschema.validators import extend, validator_for

from .errors import format_path

__all__ = ["META_VALIDATOR", "SchemaValidator", "regex_error", "regex_problems", "schema_validator"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # refused patterns are reported to the author, not to stderr


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern, _OPTIONS)


def _reason(error: Exception) -> str:
    detail = error.args[0] if error.args else error
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return str(detail)


def regex_error(pattern: Any) -> str | None:
    """Why RE2 cannot run `pattern`, or None when it can."""
    if not isinstance(pattern, str):
        return None  # the metaschema reports the wrong type
    try:
        _compiled(pattern)
    except re2.error as error:
        return f"unsupported regular expression: {_reason(error)}"
    return None


def _search(pattern: str, text: str) -> bool:
    return _compiled(pattern).search(text) is not None


# Keywords whose value maps names to subschemas (the names are data, not keywords).
_NAMED_SUBSCHEMAS = ("properties", "$defs", "definitions", "dependentSchemas")
# Keywords whose value is data, never a subschema.
_DATA_KEYWORDS = ("enum", "const", "default", "examples", "required", "dependentRequired", "$comment")


def regex_problems(schema: Any, path: list[str | int]) -> list[dict[str, str]]:
    """Every regular expression in `schema` RE2 cannot run, and other uses it cannot make linear.

    Returns ``[{"field": "inputs.properties.code.pattern", "message": "unsupported regular expression: ..."}]``.
    """
    problems: list[dict[str, str]] = []
    pattern_properties: list[list[str | int]] = []
    unevaluated: list[list[str | int]] = []
    stack: list[tuple[Any, list[str | int]]] = [(schema, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, list):
            stack.extend((item, [*where, index]) for index, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            here = [*where, key]
            if key in _DATA_KEYWORDS:
                continue
            if key == "pattern":
                message = regex_error(value)
                if message:
                    problems.append({"field": format_path(here), "message": message})
            elif key == "patternProperties" and isinstance(value, dict):
                pattern_properties.append(here)
                for name, subschema in value.items():
                    message = regex_error(name)
                    if message:
                        problems.append({"field": format_path([*here, name]), "message": message})
                    stack.append((subschema, [*here, name]))
            elif key in _NAMED_SUBSCHEMAS and isinstance(value, dict):
                stack.extend((subschema, [*here, name]) for name, subschema in value.items())
            else:
                if key == "unevaluatedProperties":
                    unevaluated.append(here)
                stack.append((value, here))
    if pattern_properties and unevaluated:
        problems.extend(
            {
                "field": format_path(where),
                "message": "unevaluatedProperties cannot be combined with patternProperties "
                f"({format_path(pattern_properties[0])}): use additionalProperties",
            }
            for where in unevaluated
        )
    return problems


# ------------------------------------------------------------------------------------- keywords


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        regex = _compiled(pattern)
        for key, value in instance.items():
            if regex.search(key) is not None:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: dict[str, Any], schema: dict[str, Any]) -> Iterator[str]:
    properties = schema.get("properties", {})
    patterns = [_compiled(pattern) for pattern in schema.get("patternProperties", {})]
    for key in instance:
        if key not in properties and not any(regex.search(key) is not None for regex in patterns):
            yield key


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """jsonschema's additionalProperties (same errors), matching patternProperties with RE2."""
    if not validator.is_type(instance, "object"):
        return
    extras = set(_additional(instance, schema))
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            error = "Additional properties are not allowed (%s %s unexpected)"
            yield ValidationError(error % extras_msg(sorted(extras, key=str)))


def _is_regex(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    return _compiled(instance) is not None


FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
FORMAT_CHECKER.checks("regex", raises=re2.error)(_is_regex)

_META_CLASS = validator_for(Draft202012Validator.META_SCHEMA, default=Draft202012Validator)
_META_FORMATS = FormatChecker()
# Patterns are checked by regex_problems (RE2, with a clear message), not as Python regexes here.
_META_FORMATS.checkers = {name: check for name, check in _META_CLASS.FORMAT_CHECKER.checkers.items() if name != "regex"}
# Checks that a tenant's schema is a schema (its own patterns: regex_problems).
META_VALIDATOR = _META_CLASS(Draft202012Validator.META_SCHEMA, format_checker=_META_FORMATS)

SchemaValidator = extend(
    Draft202012Validator,
    validators={
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
    format_checker=FORMAT_CHECKER,
)


def schema_validator(schema: dict[str, Any]) -> Any:
    """A Draft 2020-12 validator for `schema` whose regular expressions run on RE2 (check them first)."""
    return SchemaValidator(schema, format_checker=FORMAT_CHECKER)
