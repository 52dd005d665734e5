"""Tests that keep docs/nodes.md generated, complete and truthful (its examples compile)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.engine import DefinitionError, NodeType, compile_workflow, default_registry
from apps.engine.docs import COMMAND, render_markdown

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCS = REPO_ROOT / "docs" / "nodes.md"
UNKNOWN_NODE = re.compile(r"unknown node '([a-z0-9_-]+)'")


def test_checked_in_docs_match_the_generator() -> None:
    assert DOCS.exists(), f"docs/nodes.md is missing: run `{COMMAND}`"
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), f"docs/nodes.md is stale: run `{COMMAND}`"


def test_the_command_prints_the_page_without_django() -> None:
    code = "import runpy, sys; runpy.run_module('apps.engine.docs', run_name='__main__')"
    check = "import sys; assert 'django' not in sys.modules"
    completed = subprocess.run(
        [sys.executable, "-c", f"{code}\n{check}"], cwd=REPO_ROOT, capture_output=True, text=True, encoding="utf-8"
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == render_markdown()


def test_every_node_type_is_documented() -> None:
    page = render_markdown()
    for node_type in default_registry.types():
        assert f"## `{node_type.name}`" in page
        assert node_type.description and node_type.output and node_type.example is not None, node_type.name
        assert node_type.example["type"] == node_type.name


def _properties(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(schema, dict):
        return
    for name, prop in schema.get("properties", {}).items():
        yield f"{path}.{name}", prop
        yield from _properties(prop, f"{path}.{name}")
        yield from _properties(prop.get("items"), f"{path}.{name}[]")


@pytest.mark.parametrize("node_type", default_registry.types(), ids=lambda node_type: node_type.name)
def test_every_config_property_has_a_description(node_type: NodeType) -> None:
    missing = [path for path, prop in _properties(node_type.config_schema, node_type.name) if not prop.get("description")]
    assert missing == []


@pytest.mark.parametrize("node_type", default_registry.types(), ids=lambda node_type: node_type.name)
def test_every_example_compiles(node_type: NodeType) -> None:
    example = dict(node_type.example or {})
    definition: dict[str, Any] = {"nodes": [example], "edges": []}
    known = {example["id"]}
    # Give the example the nodes it mentions: upstream stubs for what it reads, a plain stub for its fallback.
    for _ in range(5):
        try:
            compile_workflow(definition)
            return
        except DefinitionError as exc:
            for error in exc.errors:
                match = UNKNOWN_NODE.search(error["message"])
                assert match, error
                node_id = match.group(1)
                if node_id in known:
                    continue
                known.add(node_id)
                definition["nodes"].append({"id": node_id, "type": "transform", "config": {"expression": "`null`"}})
                if ".on_error" not in error["field"]:
                    definition["edges"].append({"from": node_id, "to": example["id"]})
    pytest.fail(f"the example of {node_type.name} does not compile")
