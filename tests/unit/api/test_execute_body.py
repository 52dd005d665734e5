"""The execute body has one declaration, ExecuteSerializer: it validates the body and writes its OpenAPI schema."""

import json

import pytest

from apps.api.errors import flatten_errors
from apps.api.execute import _parse
from apps.api.schema import _body_schema
from apps.api.serializers import ExecuteSerializer
from apps.core.errors import ValidationFailed


def _errors(body: dict) -> dict[str, str]:
    serializer = ExecuteSerializer(data=body)
    assert not serializer.is_valid()
    return flatten_errors(serializer.errors)


def test_the_documented_body_is_the_validated_one():
    assert _body_schema(ExecuteSerializer()) == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "inputs": {"type": "object", "description": "Validated against the workflow's input JSON Schema"},
            "session": {"type": "string", "minLength": 1, "nullable": True, "description": "ses_…: bind the run to it"},
            "wait": {"type": "boolean", "default": True},
            "environment": {"type": "string", "default": "production"},
        },
    }


def test_defaults_fill_what_is_left_out():
    serializer = ExecuteSerializer(data={})
    assert serializer.is_valid()
    assert serializer.validated_data == {"inputs": {}, "wait": True, "environment": "production"}


def test_only_true_false_and_strings_pass():
    assert set(_errors({"wait": "yes"})) == {"wait"}
    assert set(_errors({"wait": 1})) == {"wait"}
    assert set(_errors({"session": 42})) == {"session"}
    assert set(_errors({"environment": 5})) == {"environment"}
    assert _errors({"inputz": {}}) == {"inputz": "unknown field"}


def test_the_view_answers_as_the_serializer_does():
    good = {"inputs": {"name": "x"}, "session": None, "wait": False}
    serializer = ExecuteSerializer(data=good)
    assert serializer.is_valid()
    assert _parse(json.dumps(good).encode()) == serializer.validated_data
    for bad in ({"wait": "yes"}, {"session": 42, "environment": 5}, {"inputz": {}}):
        with pytest.raises(ValidationFailed) as refused:
            _parse(json.dumps(bad).encode())
        assert refused.value.fields == _errors(bad)
