"""Tests that the regular expressions an input schema carries run in linear time (RE2) and that patterns
RE2 cannot run are refused when the definition is compiled, naming the field."""

from __future__ import annotations

import time
from typing import Any

import pytest
from engine_helpers import definition_errors

from apps.engine import InputError, compile_workflow
from apps.engine.schemas import regex_problems, schema_validator

EVIL = "^(a+)+$"
ATTACK = "a" * 48 + "!"


def workflow(schema: dict[str, Any]) -> Any:
    return compile_workflow({"inputs": schema, "nodes": [{"id": "t", "type": "template", "config": {"template": "x"}}]})


def refused(workflow_inputs: Any, inputs: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    started = time.monotonic()
    with pytest.raises(InputError) as caught:
        workflow_inputs.validate_inputs(inputs)
    return caught.value.errors, time.monotonic() - started


def test_a_backtracking_pattern_refuses_the_attack_input_at_once() -> None:
    compiled = workflow({"type": "object", "properties": {"code": {"type": "string", "pattern": EVIL}}})
    errors, elapsed = refused(compiled, {"code": ATTACK})
    assert elapsed < 0.1
    assert errors == [{"field": "code", "message": f"{ATTACK!r} does not match {EVIL!r}"}]
    compiled.validate_inputs({"code": "aaaa"})


def test_pattern_properties_and_additional_properties_run_on_re2() -> None:
    compiled = workflow({"type": "object", "patternProperties": {EVIL: {"type": "integer"}}, "additionalProperties": False})
    errors, elapsed = refused(compiled, {ATTACK: 1})
    assert elapsed < 0.1
    assert errors == [{"field": "", "message": f"{ATTACK!r} does not match any of the regexes: {EVIL!r}"}]
    errors, _ = refused(compiled, {"aaa": "not a number"})
    assert errors == [{"field": "aaa", "message": "'not a number' is not of type 'integer'"}]
    compiled.validate_inputs({"aaa": 1})


def test_nested_patterns_are_linear_too() -> None:
    schema = {
        "type": "object",
        "$defs": {"code": {"type": "string", "pattern": EVIL}},
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/code"}}},
    }
    errors, elapsed = refused(workflow(schema), {"items": ["aa", ATTACK]})
    assert elapsed < 0.1
    assert [error["field"] for error in errors] == ["items[1]"]


def test_format_regex_inputs_are_checked_with_re2() -> None:
    compiled = workflow({"type": "object", "properties": {"re": {"type": "string", "format": "regex"}}})
    errors, _ = refused(compiled, {"re": "(a)\\1"})
    assert errors == [{"field": "re", "message": "'(a)\\\\1' is not a 'regex'"}]
    compiled.validate_inputs({"re": "^[a-z]+$"})


@pytest.mark.parametrize(
    ("schema", "field", "reason"),
    [
        (
            {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a)\\1$"}}},
            "inputs.properties.code.pattern",
            "unsupported regular expression: invalid escape sequence: \\1",
        ),
        (
            {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(?=a)a$"}}},
            "inputs.properties.code.pattern",
            "unsupported regular expression: invalid perl operator: (?=",
        ),
        (
            {"type": "object", "patternProperties": {"(?<!x)y": {}}},
            'inputs.patternProperties["(?<!x)y"]',
            "unsupported regular expression: invalid perl operator: (?<!",
        ),
        (
            {"type": "object", "$defs": {"d": {"anyOf": [{"pattern": "(x)\\1"}]}}},
            "inputs.$defs.d.anyOf[0].pattern",
            "unsupported regular expression: invalid escape sequence: \\1",
        ),
        (
            {"type": "object", "properties": {"code": {"type": "string", "pattern": "["}}},
            "inputs.properties.code.pattern",
            "unsupported regular expression: missing ]: [",
        ),
        (
            {"type": "object", "patternProperties": {"^x": {}}, "unevaluatedProperties": False},
            "inputs.unevaluatedProperties",
            "unevaluatedProperties cannot be combined with patternProperties (inputs.patternProperties): use "
            "additionalProperties",
        ),
    ],
)
def test_patterns_re2_cannot_run_are_refused_at_compile_time(schema: dict[str, Any], field: str, reason: str) -> None:
    errors = definition_errors({"inputs": schema, "nodes": [{"id": "t", "type": "template", "config": {"template": "x"}}]})
    assert [(error["field"], error["message"]) for error in errors] == [(field, reason)]


def test_names_that_look_like_keywords_are_data() -> None:
    schema = {"type": "object", "properties": {"pattern": {"type": "string"}}, "enum": [{"pattern": "(a)\\1"}]}
    assert regex_problems(schema, ["inputs"]) == []


def test_the_schema_validator_is_standard_draft_2020_12_otherwise() -> None:
    validator = schema_validator({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]})
    assert [error.message for error in validator.iter_errors({"n": 0})] == ["0 is less than the minimum of 1"]
    assert [error.message for error in validator.iter_errors({})] == ["'n' is a required property"]
