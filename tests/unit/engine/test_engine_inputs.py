"""Tests of CompiledWorkflow.validate_inputs: every JSON Schema violation with a field path."""

from __future__ import annotations

from typing import Any

import pytest

from apps.engine import CompiledWorkflow, InputError, Limits, compile_workflow

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "items"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string", "format": "email"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string"}, "qty": {"type": "number"}},
            },
        },
        "first name": {"type": "string"},
    },
}


@pytest.fixture
def workflow() -> CompiledWorkflow:
    return compile_workflow({"inputs": SCHEMA, "nodes": [{"id": "a", "type": "transform", "config": {"expression": "inputs"}}]})


def input_errors(workflow: CompiledWorkflow, inputs: Any) -> list[dict[str, str]]:
    with pytest.raises(InputError) as info:
        workflow.validate_inputs(inputs)
    return info.value.errors


def test_valid_inputs_pass(workflow: CompiledWorkflow) -> None:
    assert workflow.validate_inputs({"name": "x", "items": [{"id": "1", "qty": 2}]}) is None


def test_required_and_type_errors(workflow: CompiledWorkflow) -> None:
    errors = input_errors(workflow, {"name": 123})
    assert {"field": "name", "message": "123 is not of type 'string'"} in errors
    assert {"field": "items", "message": "'items' is a required property"} in errors
    assert len(errors) == 2


def test_nested_paths(workflow: CompiledWorkflow) -> None:
    errors = input_errors(workflow, {"name": "x", "items": [{"id": "a"}, {"id": "b", "qty": "many"}, {"qty": 1}, {"id": 5}]})
    assert errors == [
        {"field": "items[1].qty", "message": "'many' is not of type 'number'"},
        {"field": "items[2].id", "message": "'id' is a required property"},
        {"field": "items[3].id", "message": "5 is not of type 'string'"},
    ]


def test_root_level_errors(workflow: CompiledWorkflow) -> None:
    errors = input_errors(workflow, {"name": "x", "items": [], "extra": 1})
    assert errors == [{"field": "", "message": "Additional properties are not allowed ('extra' was unexpected)"}]


def test_inputs_must_be_an_object(workflow: CompiledWorkflow) -> None:
    for value in ([], "x", None, 3):
        assert input_errors(workflow, value) == [{"field": "", "message": "inputs must be a JSON object"}]


def test_constraint_messages(workflow: CompiledWorkflow) -> None:
    errors = input_errors(workflow, {"name": "", "age": -1, "items": [], "email": "not-an-email"})
    assert {"field": "name", "message": "'' should be non-empty"} in errors
    assert {"field": "age", "message": "-1 is less than the minimum of 0"} in errors
    assert {"field": "email", "message": "'not-an-email' is not a 'email'"} in errors


def test_non_identifier_keys_are_quoted(workflow: CompiledWorkflow) -> None:
    errors = input_errors(workflow, {"name": "x", "items": [], "first name": 1})
    assert errors == [{"field": '["first name"]', "message": "1 is not of type 'string'"}]


def test_booleans_are_not_integers(workflow: CompiledWorkflow) -> None:
    errors = input_errors(workflow, {"name": "x", "items": [], "age": True})
    assert errors == [{"field": "age", "message": "True is not of type 'integer'"}]


def test_payload_limit_on_inputs() -> None:
    workflow = compile_workflow(
        {"nodes": [{"id": "a", "type": "transform", "config": {"expression": "inputs"}}]},
        limits=Limits(max_payload_bytes=100),
    )
    errors = input_errors(workflow, {"blob": "x" * 200})
    assert errors == [{"field": "", "message": "inputs exceeds the payload limit of 100 bytes"}]
    workflow.validate_inputs({"blob": "x" * 50})


def test_input_error_string() -> None:
    workflow = compile_workflow(
        {
            "inputs": {"type": "object", "required": ["a"]},
            "nodes": [{"id": "a", "type": "transform", "config": {"expression": "inputs"}}],
        }
    )
    with pytest.raises(InputError) as info:
        workflow.validate_inputs({})
    assert str(info.value) == "invalid inputs (1 error): a: 'a' is a required property"
