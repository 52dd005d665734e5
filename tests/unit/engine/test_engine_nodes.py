"""Tests of each built-in node type: template, transform, filter, condition, merge and delay."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import by_node, run

from apps.engine import Limits


def single(node_type: str, config: dict[str, Any], inputs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    definition = {"nodes": [{"id": "n", "type": node_type, "config": config}], "outputs": {"out": "nodes.n"}}
    return run(definition, inputs, **kwargs)


def output(node_type: str, config: dict[str, Any], inputs: dict[str, Any] | None = None) -> Any:
    result = single(node_type, config, inputs)
    assert result.status == "completed", result.error
    return result.outputs["out"]


def failure(node_type: str, config: dict[str, Any], inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    result = single(node_type, config, inputs)
    assert result.status == "failed"
    assert result.outputs == {}
    assert result.error["node"] == "n"
    return result.error


# ---------------------------------------------------------------------------------------- template


def test_template_renders_inputs_and_nodes() -> None:
    definition = {
        "nodes": [
            {"id": "count", "type": "transform", "config": {"expression": "length(inputs.items)"}},
            {
                "id": "msg",
                "type": "template",
                "config": {
                    "template": "{{ inputs.user.name }} has {{ nodes.count }} items: "
                    "{% for i in inputs.items %}{{ i }}{% if not loop.last %}, {% endif %}{% endfor %}"
                },
            },
        ],
        "edges": [{"from": "count", "to": "msg"}],
        "outputs": {"text": "nodes.msg"},
    }
    result = run(definition, {"user": {"name": "Ada"}, "items": ["a", "b"]})
    assert result.outputs == {"text": "Ada has 2 items: a, b"}


def test_template_dict_keys_win_over_dict_methods() -> None:
    assert output("template", {"template": "{{ inputs.items }}|{{ inputs.keys }}"}, {"items": 3, "keys": "k"}) == "3|k"
    assert output("template", {"template": "{{ inputs.items() | list | length }}"}, {"a": 1}) == "1"


def test_template_is_not_autoescaped() -> None:
    assert output("template", {"template": "{{ inputs.html }}"}, {"html": "<b>&</b>"}) == "<b>&</b>"


def test_template_json_output() -> None:
    config = {"template": '{"name": {{ inputs.name | tojson }}, "n": {{ inputs.n }}}', "output": "json"}
    assert output("template", config, {"name": "Ada", "n": 2}) == {"name": "Ada", "n": 2}


def test_template_json_output_invalid() -> None:
    error = failure("template", {"template": "{not json", "output": "json"})
    assert error["code"] == "invalid_json"


def test_template_missing_variable_is_a_node_error() -> None:
    error = failure("template", {"template": "Hi {{ inputs.nickname }}"}, {"name": "x"})
    assert error["code"] == "template_undefined"
    assert "nickname" in error["message"]
    assert "Traceback" not in error["message"]


def test_template_default_filter_handles_missing_values() -> None:
    assert output("template", {"template": "Hi {{ inputs.nickname | default('friend') }}"}, {}) == "Hi friend"
    assert output("template", {"template": "{{ inputs.get('nickname', 'anon') }}"}, {}) == "anon"


def test_template_runtime_error() -> None:
    error = failure("template", {"template": "{{ 1 / inputs.zero }}"}, {"zero": 0})
    assert error["code"] == "template_error"
    assert "ZeroDivisionError" in error["message"]


# --------------------------------------------------------------------------------------- transform


def test_transform_expression() -> None:
    inputs = {"orders": [{"id": 1, "total": 5}, {"id": 2, "total": 7}]}
    assert output("transform", {"expression": "sum(inputs.orders[*].total)"}, inputs) == 12
    assert output("transform", {"expression": "inputs.orders[?total > `6`].id"}, inputs) == [2]
    assert output("transform", {"expression": "inputs.missing"}, inputs) is None


def test_transform_mapping() -> None:
    config = {"mapping": {"count": "length(inputs.xs)", "first": "inputs.xs[0]", "quoted": "'lit'"}}
    assert output("transform", config, {"xs": [4, 5]}) == {"count": 2, "first": 4, "quoted": "lit"}


def test_transform_runtime_type_error() -> None:
    error = failure("transform", {"expression": "length(inputs.n)"}, {"n": 5})
    assert error["code"] == "expression_error"
    assert "length" in error["message"]


def test_transform_fanout_limit() -> None:
    definition = {
        "nodes": [{"id": "n", "type": "transform", "config": {"expression": "inputs.xs[*].a"}}],
        "outputs": {"out": "nodes.n"},
    }
    result = run(definition, {"xs": [{"a": i} for i in range(11)]}, limits=Limits(max_fanout=10))
    assert result.status == "failed"
    assert result.error["code"] == "fanout_exceeded"
    assert run(definition, {"xs": [{"a": i} for i in range(10)]}, limits=Limits(max_fanout=10)).status == "completed"


# ------------------------------------------------------------------------------------------ filter


def test_filter_keeps_truthy_items() -> None:
    config = {"items": "inputs.people", "where": "age >= `18`"}
    people = [{"name": "a", "age": 17}, {"name": "b", "age": 18}, {"name": "c"}]
    assert output("filter", config, {"people": people}) == [{"name": "b", "age": 18}]


def test_filter_uses_jmespath_truthiness() -> None:
    config = {"items": "inputs.values", "where": "@"}
    assert output("filter", config, {"values": [0, 1, "", "x", [], [1], {}, {"a": 1}, None, False, True]}) == [
        0,
        1,
        "x",
        [1],
        {"a": 1},
        True,
    ]


def test_filter_non_list_is_a_node_error() -> None:
    error = failure("filter", {"items": "inputs.value", "where": "@"}, {"value": {"a": 1}})
    assert error["code"] == "not_a_list"
    assert "object" in error["message"]
    assert failure("filter", {"items": "inputs.none", "where": "@"}, {})["code"] == "not_a_list"


def test_filter_fanout_limit() -> None:
    definition = {"nodes": [{"id": "n", "type": "filter", "config": {"items": "inputs.xs", "where": "@"}}]}
    result = run(definition, {"xs": list(range(6))}, limits=Limits(max_fanout=5))
    assert result.error["code"] == "fanout_exceeded"


# --------------------------------------------------------------------------------------- condition


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (None, False),
        (0, True),
        ("", False),
        ("x", True),
        ([], False),
        ({}, False),
    ],
)
def test_condition_truthiness(value: Any, expected: bool) -> None:
    assert output("condition", {"expression": "inputs.v"}, {"v": value}) == {"value": expected}


def test_condition_comparison() -> None:
    assert output("condition", {"expression": "inputs.n > `3`"}, {"n": 4}) == {"value": True}


# ------------------------------------------------------------------------------------------- merge


def merge_definition(mode: str | None, a: str, b: str) -> dict[str, Any]:
    config: dict[str, Any] = {"from": ["a", "b"]}
    if mode:
        config["mode"] = mode
    return {
        "nodes": [
            {"id": "a", "type": "transform", "config": {"expression": a}},
            {"id": "b", "type": "transform", "config": {"expression": b}},
            {"id": "m", "type": "merge", "config": config},
        ],
        "edges": [{"from": "a", "to": "m"}, {"from": "b", "to": "m"}],
        "outputs": {"out": "nodes.m"},
    }


def test_merge_object_is_the_default() -> None:
    assert run(merge_definition(None, "`1`", "`[2]`")).outputs["out"] == {"a": 1, "b": [2]}


def test_merge_list() -> None:
    assert run(merge_definition("list", "`1`", "`[2]`")).outputs["out"] == [1, [2]]


def test_merge_deep() -> None:
    a = '`{"x": {"y": 1, "z": [1]}, "k": 1}`'
    b = '`{"x": {"w": 2, "z": [2]}, "k": 2}`'
    assert run(merge_definition("deep", a, b)).outputs["out"] == {"x": {"y": 1, "z": [2], "w": 2}, "k": 2}


def test_merge_deep_does_not_mutate_upstream_outputs() -> None:
    a = '`{"x": {"y": 1}}`'
    b = '`{"x": {"w": 2}}`'
    result = run(merge_definition("deep", a, b))
    assert by_node(result)["a"]["output"] == {"x": {"y": 1}}


def test_merge_deep_rejects_non_objects() -> None:
    result = run(merge_definition("deep", "`1`", "`{}`"))
    assert result.status == "failed"
    assert result.error == {
        "node": "m",
        "code": "merge_type_error",
        "message": "deep merge needs object outputs; 'a' produced number",
    }


def test_merge_includes_skipped_sources_as_null() -> None:
    definition = merge_definition(None, "`1`", "`2`")
    definition["nodes"].insert(0, {"id": "gate", "type": "condition", "config": {"expression": "`false`"}})
    definition["edges"].append({"from": "gate", "to": "b", "when": "nodes.gate.value"})
    result = run(definition)
    assert by_node(result)["b"]["status"] == "skipped"
    assert result.outputs["out"] == {"a": 1, "b": None}


# ------------------------------------------------------------------------------------------- delay


def test_delay_sleeps() -> None:
    result = single("delay", {"seconds": 0.05})
    assert result.status == "completed"
    assert result.outputs["out"] == {"slept_s": 0.05}
    assert by_node(result)["n"]["duration_ms"] >= 45
