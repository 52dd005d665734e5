"""Tests of the library node types: metrics, chart, dataset_query, email, notify and subworkflow, with fake ports."""

from __future__ import annotations

import math
import random
import struct
from typing import Any
from xml.etree import ElementTree

import numpy
import pytest
from engine_helpers import (
    FakeArtifacts,
    FakeDatasets,
    FakeEvents,
    FakeMail,
    FakeWorkflows,
    by_node,
    definition_errors,
    fake_ports,
    run,
)

from apps.engine import Limits, NodeError, compile_workflow
from apps.engine.library.metrics import percentile

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def single(node_type: str, config: dict[str, Any], inputs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    definition = {"nodes": [{"id": "n", "type": node_type, "config": config}], "outputs": {"out": "nodes.n"}}
    return run(definition, inputs, **kwargs)


def output(node_type: str, config: dict[str, Any], inputs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    result = single(node_type, config, inputs, **kwargs)
    assert result.status == "completed", result.error
    return result.outputs["out"]


def failure(node_type: str, config: dict[str, Any], inputs: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    result = single(node_type, config, inputs, **kwargs)
    assert result.status == "failed", result.outputs
    assert result.error["node"] == "n"
    return result.error


def config_error_fields(node_type: str, config: dict[str, Any], **kwargs: Any) -> set[str]:
    errors = definition_errors({"nodes": [{"id": "n", "type": node_type, "config": config}]}, **kwargs)
    assert all(error["node"] == "n" for error in errors), errors
    return {error["field"] for error in errors}


# ----------------------------------------------------------------------------------------- metrics

ROWS = [{"v": 1}, {"v": 2}, {"v": 3}, {"v": 4}]


def test_metrics_all() -> None:
    out = output("metrics", {"rows": "inputs.rows", "field": "v"}, {"rows": ROWS})
    assert list(out) == ["count", "sum", "mean", "min", "max", "median", "stddev", "p50", "p90", "p95", "p99"]
    assert out["count"] == 4 and out["sum"] == 10 and out["mean"] == 2.5
    assert out["min"] == 1 and out["max"] == 4
    assert out["median"] == out["p50"] == 2.5
    assert out["stddev"] == pytest.approx(math.sqrt(1.25))
    assert out["p90"] == pytest.approx(3.7) and out["p95"] == pytest.approx(3.85) and out["p99"] == pytest.approx(3.97)


def test_metrics_subset_keeps_requested_order() -> None:
    out = output("metrics", {"rows": "inputs.rows", "field": "v", "metrics": ["max", "count"]}, {"rows": ROWS})
    assert out == {"max": 4, "count": 4}


def test_percentiles_match_numpy_linear_interpolation() -> None:
    rng = random.Random(7)
    for size in (1, 2, 3, 10, 101):
        values = sorted(rng.uniform(-1000, 1000) for _ in range(size))
        for p in (0, 50, 90, 95, 99, 100):
            assert percentile(values, p) == pytest.approx(float(numpy.percentile(values, p)))


def test_metrics_skip_missing_and_null_values() -> None:
    rows = [{"v": 1}, {"v": None}, {}, {"v": 5.5}]
    out = output("metrics", {"rows": "inputs.rows", "field": "v", "metrics": ["count", "sum", "mean"]}, {"rows": rows})
    assert out == {"count": 2, "sum": 6.5, "mean": 3.25}


def test_metrics_count_rows_without_field() -> None:
    assert output("metrics", {"rows": "inputs.rows"}, {"rows": [{}, {}, {"x": 1}]}) == {"count": 3}


def test_metrics_without_field_need_only_count() -> None:
    assert config_error_fields("metrics", {"rows": "inputs.rows", "metrics": ["count", "sum"]}) == {"nodes[0].config.field"}


def test_metrics_empty_rows() -> None:
    out = output("metrics", {"rows": "inputs.rows", "field": "v"}, {"rows": []})
    assert out["count"] == 0 and out["sum"] == 0
    assert all(out[name] is None for name in ("mean", "min", "max", "median", "stddev", "p50", "p90", "p95", "p99"))


def test_metrics_null_rows_are_no_rows() -> None:
    assert output("metrics", {"rows": "inputs.missing", "field": "v", "metrics": ["count"]}, {}) == {"count": 0}


@pytest.mark.parametrize("bad", ["12", True, [1], {"n": 1}])
def test_metrics_not_numeric_names_the_row(bad: Any) -> None:
    error = failure("metrics", {"rows": "inputs.rows", "field": "v"}, {"rows": [{"v": 1}, {"v": 2}, {"v": bad}]})
    assert error["code"] == "not_numeric"
    assert error["message"].startswith("row [2] field 'v' is ")


def test_metrics_group_by() -> None:
    rows = [
        {"cat": "books", "amount": 10},
        {"cat": "toys", "amount": 1},
        {"cat": "books", "amount": 5},
        {"amount": 7},
        {"cat": 3, "amount": 2},
    ]
    out = output(
        "metrics", {"rows": "inputs.rows", "field": "amount", "metrics": ["count", "sum"], "group_by": "cat"}, {"rows": rows}
    )
    assert out == {
        "groups": {
            "books": {"count": 2, "sum": 15},
            "toys": {"count": 1, "sum": 1},
            "null": {"count": 1, "sum": 7},
            "3": {"count": 1, "sum": 2},
        }
    }


def test_metrics_rows_must_be_a_list_of_objects() -> None:
    assert failure("metrics", {"rows": "inputs.rows", "field": "v"}, {"rows": {"v": 1}})["code"] == "not_a_list"
    assert failure("metrics", {"rows": "inputs.rows", "field": "v"}, {"rows": [1, 2]})["code"] == "not_an_object"


def test_metrics_fanout_limit() -> None:
    error = failure("metrics", {"rows": "inputs.rows", "field": "v"}, {"rows": ROWS}, limits=Limits(max_fanout=3))
    assert error["code"] == "fanout_exceeded"


def test_metrics_float_sums_are_exact() -> None:
    out = output("metrics", {"rows": "inputs.rows", "field": "v", "metrics": ["sum"]}, {"rows": [{"v": 0.1}] * 10})
    assert out == {"sum": 1.0}


def test_metrics_workflow_is_inline_eligible() -> None:
    workflow = compile_workflow({"nodes": [{"id": "m", "type": "metrics", "config": {"rows": "inputs.rows", "field": "v"}}]})
    assert workflow.is_inline_eligible is True


# ------------------------------------------------------------------------------------------- chart

SALES = [
    {"name": "Ada", "revenue": 120, "cost": 80},
    {"name": "Bob", "revenue": 90.5, "cost": None},
    {"name": "Cy", "revenue": 30, "cost": 10},
]


def chart(config: dict[str, Any], inputs: dict[str, Any] | None = None, **kwargs: Any) -> tuple[Any, FakeArtifacts]:
    artifacts = FakeArtifacts()
    result = single(
        "chart",
        {"rows": "inputs.rows", "x": "name", "y": "revenue", **config},
        inputs or {"rows": SALES},
        ports={"artifacts": artifacts},
        **kwargs,
    )
    return result, artifacts


def test_chart_svg_bar() -> None:
    result, artifacts = chart({"kind": "bar", "title": "Revenue for {{ inputs.rows | length }} customers"})
    assert result.status == "completed", result.error
    out = result.outputs["out"]
    assert out == {
        "id": "art_1",
        "name": "n.svg",
        "content_type": "image/svg+xml",
        "size": len(artifacts.stored["art_1"]["data"]),
    }
    svg = artifacts.stored["art_1"]["data"]
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (root.get("width"), root.get("height")) == ("576pt", "324pt")  # 800 x 450 px at 100 dpi
    assert b"Revenue for 3 customers" in svg  # matplotlib labels the title's glyph group with its text


def test_chart_png_is_reproducible() -> None:
    first = chart({"kind": "bar", "format": "png"})[1].stored["art_1"]["data"]
    second = chart({"kind": "bar", "format": "png"})[1].stored["art_1"]["data"]
    assert first == second


def test_chart_png_line_with_two_series_and_custom_size() -> None:
    result, artifacts = chart(
        {
            "kind": "line",
            "y": ["revenue", "cost"],
            "format": "png",
            "width": 640,
            "height": 320,
            "name": "sales/{{ inputs.month }}.png",
        },
        {"rows": SALES, "month": "2026-11"},
    )
    assert result.status == "completed", result.error
    stored = artifacts.stored["art_1"]
    assert stored["name"] == "sales_2026-11.png"
    assert stored["content_type"] == "image/png"
    data = stored["data"]
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (640, 320)


@pytest.mark.parametrize("kind", ["pie", "scatter"])
def test_chart_pie_and_scatter(kind: str) -> None:
    result, artifacts = chart({"kind": kind, "format": "png"})
    assert result.status == "completed", result.error
    assert artifacts.stored["art_1"]["data"].startswith(PNG_SIGNATURE)


def test_chart_scatter_with_numeric_x() -> None:
    rows = [{"t": i, "v": i * i} for i in range(20)]
    result, artifacts = chart({"kind": "scatter", "x": "t", "y": "v"}, {"rows": rows})
    assert result.status == "completed", result.error
    ElementTree.fromstring(artifacts.stored["art_1"]["data"])


def test_chart_with_no_rows_still_renders() -> None:
    result, artifacts = chart({"kind": "bar"}, {"rows": []})
    assert result.status == "completed", result.error


def test_chart_not_numeric() -> None:
    result, artifacts = chart({"kind": "bar"}, {"rows": [{"name": "a", "revenue": 1}, {"name": "b", "revenue": "lots"}]})
    assert result.status == "failed"
    assert result.error["code"] == "not_numeric"
    assert result.error["message"].startswith("row [1]")
    assert artifacts.stored == {}


def test_chart_negative_pie_values() -> None:
    result, _ = chart({"kind": "pie"}, {"rows": [{"name": "a", "revenue": -1}]})
    assert result.error["code"] == "invalid_chart_data"


def test_chart_row_limit() -> None:
    result, _ = chart({"kind": "bar"}, limits=Limits(max_fanout=2))
    assert result.error["code"] == "fanout_exceeded"


def test_chart_needs_the_artifacts_port() -> None:
    error = failure("chart", {"rows": "inputs.rows", "kind": "bar", "x": "name", "y": "revenue"}, {"rows": SALES})
    assert error == {
        "node": "n",
        "code": "port_unavailable",
        "message": "node 'n' needs the 'artifacts' service, which this run does not have",
    }


def test_chart_config_errors() -> None:
    assert config_error_fields("chart", {"rows": "inputs.rows", "kind": "pie", "x": "a", "y": ["b", "c"]}) == {
        "nodes[0].config.y"
    }
    assert config_error_fields("chart", {"rows": "inputs.rows", "kind": "area", "x": "a", "y": "b", "width": 5}) == {
        "nodes[0].config.kind",
        "nodes[0].config.width",
    }


def test_charts_render_concurrently() -> None:
    artifacts = FakeArtifacts()
    nodes = [
        {
            "id": f"c{i}",
            "type": "chart",
            "config": {"rows": "inputs.rows", "kind": kind, "x": "name", "y": "revenue", "format": "png"},
        }
        for i, kind in enumerate(["bar", "line", "pie", "scatter"])
    ]
    result = run({"nodes": nodes}, {"rows": SALES}, ports={"artifacts": artifacts})
    assert result.status == "completed", result.error
    assert len(artifacts.stored) == 4
    assert all(item["data"].startswith(PNG_SIGNATURE) for item in artifacts.stored.values())


def test_chart_is_not_inline_eligible() -> None:
    workflow = compile_workflow(
        {"nodes": [{"id": "c", "type": "chart", "config": {"rows": "inputs.r", "kind": "bar", "x": "a", "y": "b"}}]}
    )
    assert workflow.is_inline_eligible is False


# ----------------------------------------------------------------------------------- dataset_query

CUSTOMERS = [
    {"name": "Ada", "country": "UK", "revenue": 120},
    {"name": "Bob", "country": "US", "revenue": 90},
    {"name": "Cy", "country": "UK", "revenue": 30},
]


def test_dataset_query_passes_a_structured_query() -> None:
    datasets = FakeDatasets({"customers": CUSTOMERS})
    config = {
        "dataset": "{{ inputs.table }}",
        "filters": [
            {"field": "country", "op": "eq", "value": "{{ inputs.country }}"},
            {"field": "revenue", "op": "gt", "value": 10},
        ],
        "order_by": [{"field": "revenue", "desc": True}],
        "limit": 10,
    }
    out = output("dataset_query", config, {"table": "customers", "country": "UK"}, ports={"datasets": datasets})
    assert out == {"rows": [CUSTOMERS[0], CUSTOMERS[2]], "count": 2}
    assert datasets.queries == [
        {
            "dataset": "customers",
            "filters": [{"field": "country", "op": "eq", "value": "UK"}, {"field": "revenue", "op": "gt", "value": 10}],
            "group_by": [],
            "aggregates": [],
            "order_by": [{"field": "revenue", "desc": True}],
            "limit": 10,
        }
    ]


def test_dataset_query_aggregates_and_defaults() -> None:
    datasets = FakeDatasets({"sales": []})
    config = {
        "dataset": "sales",
        "filters": [{"field": "region", "op": "in", "value": ["{{ inputs.r }}", "EU"]}],
        "group_by": ["region"],
        "aggregates": [{"fn": "count"}, {"fn": "sum", "field": "amount"}, {"fn": "avg", "field": "amount", "as": "mean"}],
    }
    output("dataset_query", config, {"r": "US"}, ports={"datasets": datasets})
    [query] = datasets.queries
    assert query["filters"] == [{"field": "region", "op": "in", "value": ["US", "EU"]}]
    assert query["aggregates"] == [
        {"fn": "count", "as": "count"},
        {"fn": "sum", "field": "amount", "as": "sum_amount"},
        {"fn": "avg", "field": "amount", "as": "mean"},
    ]
    assert query["limit"] == 1000


def test_missing_dataset_falls_back_and_the_run_recovers() -> None:
    definition = {
        "nodes": [
            {"id": "fetch", "type": "dataset_query", "config": {"dataset": "nope"}, "on_error": {"fallback": "empty"}},
            {"id": "empty", "type": "transform", "config": {"expression": '`{"rows": [], "count": 0}`'}},
            {
                "id": "stats",
                "type": "metrics",
                "config": {"rows": "nodes.fetch.rows", "field": "revenue", "metrics": ["count", "sum"]},
            },
        ],
        "edges": [{"from": "fetch", "to": "stats"}],
        "outputs": {"count": "nodes.stats.count", "fetch": "nodes.fetch"},
    }
    result = run(definition, ports={"datasets": FakeDatasets({})})
    assert result.status == "completed_with_recovery"
    assert result.outputs == {"count": 0, "fetch": {"rows": [], "count": 0}}
    assert result.recovery == [
        {
            "node": "fetch",
            "action": "fallback",
            "fallback": "empty",
            "error": {"code": "dataset_not_found", "message": "dataset 'nope' does not exist"},
        }
    ]
    assert by_node(result)["fetch"]["status"] == "recovered"


def test_dataset_query_needs_the_datasets_port() -> None:
    error = failure("dataset_query", {"dataset": "customers"})
    assert error["code"] == "port_unavailable"
    assert error["message"] == "node 'n' needs the 'datasets' service, which this run does not have"


def test_dataset_query_port_failures(calls: Any) -> None:
    class Broken:
        def query(self, **kwargs: Any) -> Any:
            calls["query"] += 1
            raise ConnectionError("database is down")

    definition = {"nodes": [{"id": "n", "type": "dataset_query", "config": {"dataset": "x"}, "retry": {"attempts": 2}}]}
    result = run(definition, ports={"datasets": Broken()})
    assert result.error == {
        "node": "n",
        "code": "port_error",
        "message": "the 'datasets' service failed in query(): ConnectionError: database is down",
    }
    assert calls["query"] == 2  # a broken service is worth retrying

    class Garbage:
        def query(self, **kwargs: Any) -> Any:
            return "rows"

    assert failure("dataset_query", {"dataset": "x"}, ports={"datasets": Garbage()})["code"] == "port_error"


def test_dataset_query_config_errors() -> None:
    config = {
        "dataset": "x",
        "filters": [{"field": "a", "op": "in", "value": 1}, {"field": "bad name", "op": "eq", "value": 1}],
        "aggregates": [
            {"fn": "count", "field": "a"},
            {"fn": "sum"},
            {"fn": "min", "field": "a", "as": "m"},
            {"fn": "max", "field": "b", "as": "m"},
        ],
        "limit": 5000,
    }
    assert config_error_fields("dataset_query", config) == {"nodes[0].config.filters[1].field"}
    del config["filters"][1]
    assert config_error_fields("dataset_query", config) == {
        "nodes[0].config.filters[0].value",
        "nodes[0].config.aggregates[0].field",
        "nodes[0].config.aggregates[1].field",
        "nodes[0].config.aggregates[3].as",
        "nodes[0].config.limit",
    }


# ------------------------------------------------------------------------------------------- email


def test_email_sends_with_attachments() -> None:
    mail = FakeMail()
    definition = {
        "nodes": [
            {"id": "chart", "type": "chart", "config": {"rows": "inputs.rows", "kind": "bar", "x": "name", "y": "revenue"}},
            {"id": "gate", "type": "transform", "config": {"expression": "`1`"}},
            {"id": "skipped", "type": "transform", "config": {"expression": "`1`"}},
            {
                "id": "send",
                "type": "email",
                "config": {
                    "to": ["{{ inputs.to }}", "ops@example.com"],
                    "cc": ["boss@example.com"],
                    "subject": "Report\nfor {{ inputs.month }}",
                    "body": "Total: {{ inputs.rows | length }}",
                    "html": "<b>{{ inputs.month }}</b>",
                    "attachments": ["nodes.chart", "'art_extra'", "nodes.skipped", "[nodes.chart.id]"],
                },
            },
        ],
        "edges": [
            {"from": "chart", "to": "send"},
            {"from": "gate", "to": "skipped", "when": "`false`"},
            {"from": "skipped", "to": "send"},
        ],
        "outputs": {"sent": "nodes.send"},
    }
    ports = fake_ports(mail=mail)
    result = run(definition, {"to": " ada@example.com ", "month": "May", "rows": SALES}, ports=ports)
    assert result.status == "completed", result.error
    assert result.outputs["sent"] == {
        "message_id": "<m1@test>",
        "accepted": ["ada@example.com", "ops@example.com", "boss@example.com"],
    }
    assert mail.sent == [
        {
            "to": ["ada@example.com", "ops@example.com"],
            "cc": ["boss@example.com"],
            "subject": "Report for May",
            "body": "Total: 3",
            "html": "<b>May</b>",
            "attachment_ids": ["art_1", "art_extra", "art_1"],
        }
    ]


@pytest.mark.parametrize(
    "address", ["no-at-sign", "a@b@c.com", "a b@c.com", "x@y.com\r\nBcc: evil@z.com", "@example.com", "a@", ""]
)
def test_email_invalid_address(address: str) -> None:
    mail = FakeMail()
    error = failure("email", {"to": ["{{ inputs.to }}"], "subject": "s", "body": "b"}, {"to": address}, ports={"mail": mail})
    assert error["code"] == "invalid_address"
    assert error["message"].startswith("to[0] is not a valid email address")
    assert mail.sent == []


def test_email_invalid_attachment() -> None:
    config = {"to": ["a@example.com"], "subject": "s", "body": "b", "attachments": ['`{"name": "x"}`']}
    assert failure("email", config, ports={"mail": FakeMail()})["code"] == "invalid_attachment"


def test_email_recipient_limits() -> None:
    config = {"to": [f"u{i}@example.com" for i in range(51)], "subject": "s", "body": "b"}
    assert config_error_fields("email", config) == {"nodes[0].config.to"}
    config = {
        "to": [f"u{i}@example.com" for i in range(30)],
        "cc": [f"c{i}@example.com" for i in range(30)],
        "subject": "s",
        "body": "b",
    }
    assert failure("email", config, ports={"mail": FakeMail()})["code"] == "too_many_recipients"
    assert config_error_fields("email", {"to": [], "subject": "s", "body": "b"}) == {"nodes[0].config.to"}


def test_email_port_errors_pass_through() -> None:
    class Down:
        def send(self, **kwargs: Any) -> Any:
            raise NodeError("email_failed", "could not send email: connection refused")

    error = failure("email", {"to": ["a@example.com"], "subject": "s", "body": "b"}, ports={"mail": Down()})
    assert error == {"node": "n", "code": "email_failed", "message": "could not send email: connection refused"}


# ------------------------------------------------------------------------------------------ notify


def test_notify_publishes() -> None:
    events = FakeEvents()
    config = {"event": "report.ready", "data": {"rows": "length(inputs.rows)", "first": "inputs.rows[0]"}}
    out = output("notify", config, {"rows": ["a", "b"]}, ports={"events": events})
    assert out == {"id": "evt_1", "type": "report.ready"}
    assert events.published == [{"type": "report.ready", "data": {"rows": 2, "first": "a"}}]


@pytest.mark.parametrize("event", ["ready", "Report.ready", "report.", "report.ready.now", "1report.ready", "report-x.ready"])
def test_notify_event_names(event: str) -> None:
    assert config_error_fields("notify", {"event": event}) == {"nodes[0].config.event"}


def test_notify_without_data() -> None:
    events = FakeEvents()
    output("notify", {"event": "data.processed"}, ports={"events": events})
    assert events.published == [{"type": "data.processed", "data": {}}]


# ------------------------------------------------------------------------------------- subworkflow

CHILD = {
    "inputs": {"type": "object", "properties": {"n": {"type": "number"}}},
    "nodes": [{"id": "double", "type": "transform", "config": {"expression": "[inputs.n, inputs.n]"}}],
    "outputs": {"pair": "nodes.double"},
}


def test_subworkflow_runs_the_child_one_level_deeper() -> None:
    workflows = FakeWorkflows({"doubler": CHILD})
    config = {"workflow": "doubler", "inputs": {"n": "inputs.value"}}
    out = output("subworkflow", config, {"value": 21}, ports={"workflows": workflows})
    assert out == {"execution_id": "run_1", "status": "completed", "outputs": {"pair": [21, 21]}}
    assert workflows.calls == [{"workflow": "doubler", "inputs": {"n": 21}, "environment": "production", "depth": 1}]


def test_subworkflow_failure_carries_the_childs_error() -> None:
    broken = {"nodes": [{"id": "t", "type": "template", "config": {"template": "{{ inputs.missing }}"}}]}
    workflows = FakeWorkflows({"broken": broken})
    error = failure("subworkflow", {"workflow": "broken", "environment": "staging"}, ports={"workflows": workflows})
    assert error["code"] == "subworkflow_failed"
    assert error["message"].startswith("subworkflow 'broken' (run_1) ended failed: template uses an undefined value")
    assert workflows.calls[0]["environment"] == "staging"


def test_subworkflow_depth_limit_is_checked_before_calling() -> None:
    workflows = FakeWorkflows({"doubler": CHILD})
    workflow = compile_workflow({"nodes": [{"id": "n", "type": "subworkflow", "config": {"workflow": "doubler"}}]})
    result = workflow.execute({}, ports={"workflows": workflows}, depth=3)
    assert result.error == {
        "node": "n",
        "code": "depth_exceeded",
        "message": "calling 'doubler' would nest subworkflows 4 deep; the limit is 3",
    }
    assert workflows.calls == []
    assert workflow.execute({}, ports={"workflows": workflows}, depth=2).status == "completed"


def test_recursive_subworkflow_stops_at_the_depth_limit() -> None:
    recursive = {"nodes": [{"id": "again", "type": "subworkflow", "config": {"workflow": "loop"}}]}
    workflows = FakeWorkflows({"loop": recursive})
    result = compile_workflow(recursive).execute({}, ports={"workflows": workflows})
    assert result.status == "failed"
    assert result.error["code"] == "subworkflow_failed"
    assert [call["depth"] for call in workflows.calls] == [1, 2, 3]
    assert "depth_exceeded" not in result.error["message"]  # the innermost message is carried up
    assert "would nest subworkflows 4 deep" in result.error["message"]


def test_subworkflow_unknown_workflow() -> None:
    error = failure("subworkflow", {"workflow": "ghost"}, ports={"workflows": FakeWorkflows()})
    assert error == {"node": "n", "code": "workflow_not_found", "message": "workflow 'ghost' does not exist"}


def test_subworkflow_config_errors() -> None:
    assert config_error_fields("subworkflow", {"workflow": "../etc", "environment": "Prod!"}) == {
        "nodes[0].config.workflow",
        "nodes[0].config.environment",
    }


# ------------------------------------------------------------------------------- whole workflows


def test_ingest_process_notify() -> None:
    events = FakeEvents()
    definition = {
        "nodes": [
            {"id": "clean", "type": "filter", "config": {"items": "inputs.rows", "where": "amount >= `0`"}},
            {
                "id": "normalise",
                "type": "transform",
                "config": {"expression": "nodes.clean[].{category: category || 'none', amount: amount}"},
            },
            {
                "id": "stats",
                "type": "metrics",
                "config": {"rows": "nodes.normalise", "field": "amount", "metrics": ["count", "sum"]},
            },
            {
                "id": "by_category",
                "type": "metrics",
                "config": {"rows": "nodes.normalise", "field": "amount", "metrics": ["sum"], "group_by": "category"},
            },
            {"id": "announce", "type": "notify", "config": {"event": "data.processed", "data": {"total": "nodes.stats.sum"}}},
        ],
        "edges": [
            {"from": "clean", "to": "normalise"},
            {"from": "normalise", "to": "stats"},
            {"from": "normalise", "to": "by_category"},
            {"from": "stats", "to": "announce"},
            {"from": "by_category", "to": "announce"},
        ],
        "outputs": {"total": "nodes.stats.sum", "groups": "nodes.by_category.groups", "event": "nodes.announce.id"},
    }
    rows = [
        {"category": "books", "amount": 10},
        {"amount": 20},
        {"category": "toys", "amount": -1},
        {"category": "books", "amount": 5},
    ]
    result = run(definition, {"rows": rows}, ports={"events": events})
    assert result.status == "completed", result.error
    assert result.outputs == {"total": 35, "groups": {"books": {"sum": 15}, "none": {"sum": 20}}, "event": "evt_1"}
    assert events.published == [{"type": "data.processed", "data": {"total": 35}}]


def test_customer_report() -> None:
    ports = fake_ports(datasets=FakeDatasets({"customers": CUSTOMERS}))
    definition = {
        "nodes": [
            {
                "id": "fetch",
                "type": "dataset_query",
                "config": {"dataset": "customers", "order_by": [{"field": "revenue", "desc": True}]},
            },
            {
                "id": "stats",
                "type": "metrics",
                "config": {"rows": "nodes.fetch.rows", "field": "revenue", "metrics": ["count", "sum", "p90"]},
            },
            {
                "id": "chart",
                "type": "chart",
                "config": {"rows": "nodes.fetch.rows", "kind": "bar", "x": "name", "y": "revenue", "format": "png"},
            },
            {
                "id": "send",
                "type": "email",
                "config": {
                    "to": ["{{ inputs.to }}"],
                    "subject": "{{ nodes.stats.count }} customers",
                    "body": "Sum {{ nodes.stats.sum }}",
                    "attachments": ["nodes.chart"],
                },
            },
        ],
        "edges": [
            {"from": "fetch", "to": "stats"},
            {"from": "fetch", "to": "chart"},
            {"from": "stats", "to": "send"},
            {"from": "chart", "to": "send"},
        ],
        "outputs": {"email": "nodes.send.message_id", "chart": "nodes.chart.id"},
    }
    result = run(definition, {"to": "ceo@example.com"}, ports=ports)
    assert result.status == "completed", result.error
    assert result.outputs == {"email": "<m1@test>", "chart": "art_1"}
    [sent] = ports["mail"].sent
    assert sent["subject"] == "3 customers" and sent["body"] == "Sum 240" and sent["attachment_ids"] == ["art_1"]
