"""Tests that compile_workflow rejects every kind of invalid definition with located, complete errors."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import definition_errors

from apps.engine import DefinitionError, Limits, compile_workflow


def transform(node_id: str, expression: str = "`1`", **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "transform", "config": {"expression": expression}, **extra}


def fields(errors: list[dict[str, Any]]) -> list[str]:
    return [error["field"] for error in errors]


def only(errors: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(errors) == 1, errors
    return errors[0]


def test_error_entries_have_node_field_and_message() -> None:
    for error in definition_errors({"nodes": [{"id": "a", "type": "nope"}], "edges": [{"from": "a", "to": "b"}]}):
        assert set(error) == {"node", "field", "message"}
        assert isinstance(error["message"], str) and error["message"]


def test_definition_must_be_an_object() -> None:
    assert only(definition_errors([])) == {  # type: ignore[arg-type]
        "node": None,
        "field": "",
        "message": "the definition must be a JSON object",
    }


def test_unknown_top_level_key_and_missing_nodes() -> None:
    errors = definition_errors({"nodez": []})
    assert {"node": None, "field": "nodes", "message": "'nodes' is a required property"} in errors
    assert any("nodez" in error["message"] for error in errors)


def test_nodes_must_be_non_empty() -> None:
    error = only(definition_errors({"nodes": []}))
    assert error["field"] == "nodes"


def test_unknown_node_type() -> None:
    error = only(definition_errors({"nodes": [{"id": "a", "type": "fail"}]}))
    assert error["node"] == "a"
    assert error["field"] == "nodes[0].type"
    assert "unknown node type 'fail'" in error["message"]
    assert "template" in error["message"]


def test_bad_config_names_the_field() -> None:
    errors = definition_errors(
        {
            "nodes": [
                {"id": "t", "type": "template", "config": {"template": 5}},
                {"id": "m", "type": "merge", "config": {}},
                {"id": "d", "type": "delay", "config": {"seconds": 1, "extra": True}},
            ]
        }
    )
    assert {
        "node": "t",
        "field": "nodes[0].config.template",
        "message": "5 is not of type 'string'",
    } in errors
    assert {
        "node": "m",
        "field": "nodes[1].config.from",
        "message": "'from' is a required property",
    } in errors
    [extra] = [error for error in errors if error["node"] == "d"]
    assert extra["field"] == "nodes[2].config"
    assert "'extra' was unexpected" in extra["message"]


def test_config_must_be_an_object() -> None:
    error = only(definition_errors({"nodes": [{"id": "a", "type": "template", "config": "hi"}]}))
    assert error == {"node": "a", "field": "nodes[0].config", "message": "'hi' is not of type 'object'"}


def test_transform_needs_exactly_one_of_expression_or_mapping() -> None:
    for config in ({}, {"expression": "a", "mapping": {"b": "b"}}):
        error = only(definition_errors({"nodes": [{"id": "x", "type": "transform", "config": config}]}))
        assert error["field"] == "nodes[0].config"
        assert "exactly one" in error["message"]


def test_delay_above_limit() -> None:
    node = {"id": "d", "type": "delay", "config": {"seconds": 61}}
    error = only(definition_errors({"nodes": [node]}))
    assert error["field"] == "nodes[0].config.seconds"
    assert compile_workflow({"nodes": [node]}, limits=Limits(max_delay_seconds=120))


def test_missing_duplicate_and_invalid_ids() -> None:
    errors = definition_errors(
        {
            "nodes": [
                {"type": "transform", "config": {"expression": "a"}},
                transform("dup"),
                transform("dup"),
                transform("Bad Id"),
                transform(""),
                {"id": 7, "type": "transform", "config": {"expression": "a"}},
            ]
        }
    )
    assert {"node": None, "field": "nodes[0].id", "message": "'id' is a required property"} in errors
    [duplicate] = [error for error in errors if error["field"] == "nodes[2].id"]
    assert duplicate["node"] == "dup" and "duplicate node id 'dup'" in duplicate["message"]
    [invalid] = [error for error in errors if error["field"] == "nodes[3].id"]
    assert invalid["node"] is None and "invalid node id 'Bad Id'" in invalid["message"]
    assert "nodes[4].id" in fields(errors)
    assert {"node": None, "field": "nodes[5].id", "message": "7 is not of type 'string'"} in errors


def test_unknown_node_keys() -> None:
    error = only(definition_errors({"nodes": [transform("a", colour="red")]}))
    assert error["node"] == "a"
    assert error["field"] == "nodes[0]"
    assert "'colour' was unexpected" in error["message"]


def test_retry_timeout_and_on_error_shapes() -> None:
    errors = definition_errors(
        {
            "nodes": [
                transform("a", retry={"attempts": 11}),
                transform("b", retry={"attempts": 2, "multiplier": 0.5, "backoff_s": -1}),
                transform("c", timeout_s=0),
                transform("d", on_error="ignore"),
                transform("e", retry={"tries": 2}),
            ]
        }
    )
    assert "nodes[0].retry.attempts" in fields(errors)
    assert "nodes[1].retry.multiplier" in fields(errors)
    assert "nodes[1].retry.backoff_s" in fields(errors)
    assert "nodes[2].timeout_s" in fields(errors)
    assert {"node": "d", "field": "nodes[3].on_error"} in [{k: e[k] for k in ("node", "field")} for e in errors]
    assert "nodes[4].retry.attempts" in fields(errors)


def test_all_errors_are_collected() -> None:
    errors = definition_errors(
        {
            "nodes": [
                {"id": "a", "type": "nope"},
                {"id": "b", "type": "template", "config": {"template": "{{ oops"}},
                transform("c", "foo bar"),
            ],
            "edges": [{"from": "a", "to": "zzz"}],
            "outputs": {"x": "nodes.missing"},
        }
    )
    assert fields(errors) == [
        "nodes[0].type",
        "nodes[1].config.template",
        "nodes[2].config.expression",
        "edges[0].to",
        "outputs.x",
    ]


def test_cycle_names_the_nodes() -> None:
    errors = definition_errors(
        {
            "nodes": [transform("a"), transform("b"), transform("c"), transform("d")],
            "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "b"}],
        }
    )
    error = only(errors)
    assert error["node"] == "b"
    assert error["message"] == "cycle detected: b -> c -> b"
    assert error["field"] == "edges[1]"


def test_cycle_without_roots_and_downstream_node_that_can_never_run() -> None:
    errors = definition_errors(
        {
            "nodes": [transform("a"), transform("b"), transform("c")],
            "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}, {"from": "b", "to": "c"}],
        }
    )
    assert errors[0]["message"] == "cycle detected: a -> b -> a"
    assert errors[1] == {
        "node": "c",
        "field": "nodes[2]",
        "message": "node 'c' can never run: it is only reachable through a cycle",
    }


def test_self_loop() -> None:
    error = only(definition_errors({"nodes": [transform("a")], "edges": [{"from": "a", "to": "a"}]}))
    assert error["field"] == "edges[0]"
    assert "cycle" in error["message"] and "'a'" in error["message"]


def test_dangling_and_duplicate_edges() -> None:
    errors = definition_errors(
        {
            "nodes": [transform("a"), transform("b")],
            "edges": [
                {"from": "a", "to": "b"},
                {"from": "a", "to": "b"},
                {"from": "ghost", "to": "b"},
                {"from": "a", "to": "phantom"},
                {"from": "a"},
                {"from": "a", "to": "b", "if": "x"},
            ],
        }
    )
    assert {
        "node": "a",
        "field": "edges[1]",
        "message": "duplicate edge 'a' -> 'b' (same as edges[0])",
    } in errors
    assert {
        "node": None,
        "field": "edges[2].from",
        "message": "edge refers to unknown node 'ghost'",
    } in errors
    assert {"node": "a", "field": "edges[3].to", "message": "edge refers to unknown node 'phantom'"} in errors
    assert {"node": None, "field": "edges[4].to", "message": "'to' is a required property"} in errors
    assert "edges[5]" in fields(errors)


def test_fallback_rules() -> None:
    errors = definition_errors(
        {
            "nodes": [
                transform("a", on_error={"fallback": "fb"}),
                transform("fb"),
                transform("b", on_error={"fallback": "fb"}),
                transform("c", on_error={"fallback": "nobody"}),
                transform("d", on_error={"fallback": "d"}),
                transform("x"),
            ],
            "edges": [{"from": "x", "to": "fb"}],
        }
    )
    assert {
        "node": "fb",
        "field": "edges[0].to",
        "message": "fallback node 'fb' (the fallback of 'a') must not have incoming edges",
    } in errors
    assert any(e["field"] == "nodes[2].on_error.fallback" and "already the fallback" in e["message"] for e in errors)
    assert {
        "node": "c",
        "field": "nodes[3].on_error.fallback",
        "message": "fallback refers to unknown node 'nobody'",
    } in errors
    assert {
        "node": "d",
        "field": "nodes[4].on_error.fallback",
        "message": "a node cannot be its own fallback",
    } in errors


def test_fallback_cycle() -> None:
    errors = definition_errors(
        {"nodes": [transform("a", on_error={"fallback": "b"}), transform("b", on_error={"fallback": "a"})]}
    )
    assert any("cycle detected" in error["message"] for error in errors)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("foo bar", "invalid JMESPath expression: Unexpected token: bar at column 4"),
        ("a.", "invalid JMESPath expression"),
        ("'open", "invalid JMESPath expression"),
        ("nosuch(@)", "unknown function nosuch()"),
        ("length(@, @)", "function length() takes 1 argument(s), got 2"),
    ],
)
def test_unparsable_jmespath(expression: str, message: str) -> None:
    error = only(definition_errors({"nodes": [transform("a", expression)]}))
    assert error["node"] == "a"
    assert error["field"] == "nodes[0].config.expression"
    assert message in error["message"]
    assert "\n" not in error["message"]


def test_unparsable_jmespath_in_when_filter_mapping_and_outputs() -> None:
    errors = definition_errors(
        {
            "nodes": [
                transform("a"),
                {"id": "f", "type": "filter", "config": {"items": "[", "where": "]"}},
                {"id": "m", "type": "transform", "config": {"mapping": {"total": "sum("}}},
            ],
            "edges": [{"from": "a", "to": "f", "when": "=="}],
            "outputs": {"out": "!!"},
        }
    )
    assert fields(errors) == [
        "nodes[1].config.items",
        "nodes[1].config.where",
        "nodes[2].config.mapping.total",
        "edges[0].when",
        "outputs.out",
    ]


def test_unparsable_jinja() -> None:
    errors = definition_errors(
        {
            "nodes": [
                {"id": "t", "type": "template", "config": {"template": "Hello {{ inputs.name "}},
                {"id": "u", "type": "template", "config": {"template": "{{ inputs.name | nosuchfilter }}"}},
                {"id": "v", "type": "template", "config": {"template": "{% for x in y %}"}},
            ]
        }
    )
    assert fields(errors) == [
        "nodes[0].config.template",
        "nodes[1].config.template",
        "nodes[2].config.template",
    ]
    assert errors[0]["node"] == "t"
    assert errors[0]["message"].startswith("template syntax error on line 1:")
    assert "nosuchfilter" in errors[1]["message"]


def test_references_to_missing_nodes() -> None:
    errors = definition_errors(
        {
            "nodes": [
                transform("a"),
                {
                    "id": "t",
                    "type": "template",
                    "config": {"template": "{{ nodes.ghost }} {{ nodes['spook'] }}"},
                },
                transform("x", "nodes.phantom.value"),
                {"id": "m", "type": "merge", "config": {"from": ["a", "nobody"]}},
            ],
            "edges": [{"from": "a", "to": "t", "when": "nodes.wraith"}, {"from": "a", "to": "m"}],
            "outputs": {"out": "nodes.banshee", "fine": "nodes.a"},
        }
    )
    expected = {
        ("nodes[1].config.template", "ghost"),
        ("nodes[1].config.template", "spook"),
        ("nodes[2].config.expression", "phantom"),
        ("nodes[3].config.from[1]", "nobody"),
        ("edges[0].when", "wraith"),
        ("outputs.out", "banshee"),
    }
    found = {(error["field"], error["message"].split("'")[1]) for error in errors}
    assert found == expected
    assert all("unknown node" in error["message"] for error in errors)


def test_nodes_inside_projections_or_item_expressions_are_data_not_references() -> None:
    definition = {
        "nodes": [
            transform("a", "inputs.rows[*].nodes.whatever"),
            {"id": "f", "type": "filter", "config": {"items": "inputs.rows", "where": "nodes.anything"}},
            transform("s", "sort_by(inputs.rows, &nodes.key)"),
        ],
        "outputs": {"x": "inputs.rows[?nodes.flag].id"},
    }
    compile_workflow(definition)


def test_reference_to_node_that_is_not_upstream() -> None:
    errors = definition_errors(
        {
            "nodes": [
                transform("a"),
                transform("b", "nodes.a"),
                transform("c", "nodes.c"),
                {"id": "d", "type": "merge", "config": {"from": ["a", "b"]}},
            ],
            "edges": [{"from": "a", "to": "d"}],
        }
    )
    assert [(e["node"], e["field"]) for e in errors] == [
        ("b", "nodes[1].config.expression"),
        ("c", "nodes[2].config.expression"),
        ("d", "nodes[3].config.from[1]"),
    ]
    assert "not guaranteed to finish before 'b'" in errors[0]["message"]
    assert "its own output" in errors[1]["message"]


def test_transitive_and_fallback_references_are_upstream() -> None:
    compile_workflow(
        {
            "nodes": [
                transform("a", on_error={"fallback": "fa"}),
                transform("fa", "nodes.a"),
                transform("b", "nodes.a"),
                transform("c", "[nodes.a, nodes.fa, nodes.b]"),
            ],
            "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c", "when": "nodes.a"}],
            "outputs": {"all": "[nodes.a, nodes.b, nodes.c, nodes.fa]"},
        }
    )


def test_bad_input_schema() -> None:
    errors = definition_errors(
        {
            "inputs": {"type": "object", "properties": {"name": {"type": "strin"}}, "required": "name"},
            "nodes": [transform("a")],
        }
    )
    assert "inputs.properties.name.type" in fields(errors)
    assert "inputs.required" in fields(errors)
    assert all(error["node"] is None for error in errors)


def test_input_schema_must_be_an_object_schema() -> None:
    error = only(definition_errors({"inputs": {"type": "array"}, "nodes": [transform("a")]}))
    assert error["field"] == "inputs.type"
    error = only(definition_errors({"inputs": [], "nodes": [transform("a")]}))
    assert error["field"] == "inputs"


def test_input_schema_rejects_remote_refs() -> None:
    error = only(
        definition_errors(
            {
                "inputs": {
                    "type": "object",
                    "properties": {"a": {"$ref": "https://example.com/schema.json"}},
                },
                "nodes": [transform("a")],
            }
        )
    )
    assert error["field"] == "inputs.properties.a.$ref"


def test_too_many_nodes() -> None:
    nodes = [transform(f"n{i}") for i in range(201)]
    error = only(definition_errors({"nodes": nodes}))
    assert error == {"node": None, "field": "nodes", "message": "too many nodes: 201 (the limit is 200)"}
    assert compile_workflow({"nodes": nodes[:200]})
    only(definition_errors({"nodes": nodes[:3]}, limits=Limits(max_nodes=2)))


def test_outputs_must_be_strings() -> None:
    error = only(definition_errors({"nodes": [transform("a")], "outputs": {"x": 5}}))
    assert error["field"] == "outputs.x"


def test_definition_error_is_raised_once_with_everything() -> None:
    with pytest.raises(DefinitionError) as info:
        compile_workflow({"nodes": [{"id": "a", "type": "nope"}, {"id": "b", "type": "nope"}]})
    assert len(info.value.errors) == 2
