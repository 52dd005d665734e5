"""Tests of the ports a run gets through execute(ports=..., depth=...) and of the port Protocols."""

from __future__ import annotations

from typing import Any

from engine_helpers import FakeArtifacts, FakeDatasets, FakeEvents, FakeMail, FakeWorkflows, run

from apps.engine import NodeRegistry, NodeType, RunContext, compile_workflow, default_registry
from apps.engine.ports import PORT_NAMES, ArtifactsPort, DatasetsPort, EventsPort, MailPort, WorkflowsPort


def inspector_registry() -> NodeRegistry:
    def inspect(config: Any, ctx: RunContext) -> Any:
        return {"ports": sorted(ctx.ports), "depth": ctx.depth}

    def use_port(config: Any, ctx: RunContext) -> Any:
        return ctx.port(config["name"]).ping()

    registry = default_registry.copy()
    registry.register(NodeType(name="inspect", run=inspect, pure=False))
    registry.register(NodeType(name="use_port", run=use_port, pure=False))
    return registry


def test_ports_and_depth_reach_the_node() -> None:
    class Ping:
        def ping(self) -> str:
            return "pong"

    workflow = compile_workflow(
        {"nodes": [{"id": "i", "type": "inspect"}], "outputs": {"i": "nodes.i"}},
        registry=inspector_registry(),
    )
    assert workflow.execute({}).outputs == {"i": {"ports": [], "depth": 0}}
    result = workflow.execute({}, ports={"events": Ping(), "mail": Ping()}, depth=2)
    assert result.outputs == {"i": {"ports": ["events", "mail"], "depth": 2}}


def test_missing_port_is_a_clear_node_error() -> None:
    definition = {"nodes": [{"id": "svc", "type": "use_port", "config": {"name": "datasets"}, "retry": {"attempts": 3}}]}
    result = run(definition, registry=inspector_registry(), ports={"mail": object()})
    assert result.status == "failed"
    assert result.error == {
        "node": "svc",
        "code": "port_unavailable",
        "message": "node 'svc' needs the 'datasets' service, which this run does not have",
    }
    assert result.steps[0]["attempts"] == 1  # retrying cannot conjure a service


def test_fakes_satisfy_the_port_protocols() -> None:
    assert isinstance(FakeDatasets(), DatasetsPort)
    assert isinstance(FakeArtifacts(), ArtifactsPort)
    assert isinstance(FakeMail(), MailPort)
    assert isinstance(FakeEvents(), EventsPort)
    assert isinstance(FakeWorkflows(), WorkflowsPort)
    assert not isinstance(object(), DatasetsPort)
    assert PORT_NAMES == ("datasets", "artifacts", "mail", "events", "workflows")


def test_every_port_using_node_names_its_port_in_the_docs() -> None:
    for node_type in default_registry.types():
        if "port_unavailable" in node_type.errors:
            assert any(f"`{name}`" in node_type.errors["port_unavailable"] for name in PORT_NAMES), node_type.name
