"""Fixtures for the workflow engine unit tests (which need no Django)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# Make `apps.engine` and the sibling helper module importable whatever pytest's import mode is.
for _path in (Path(__file__).resolve().parents[3], Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from engine_helpers import FlakyCalls, make_test_registry  # noqa: E402

from apps.engine import NodeRegistry  # noqa: E402


@pytest.fixture
def calls() -> FlakyCalls:
    return FlakyCalls()


@pytest.fixture
def registry(calls: FlakyCalls) -> NodeRegistry:
    return make_test_registry(calls)


@pytest.fixture
def hello_definition() -> dict[str, Any]:
    return {
        "inputs": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        "nodes": [{"id": "greet", "type": "template", "config": {"template": "Hello, {{ inputs.name }}!"}}],
        "edges": [],
        "outputs": {"message": "nodes.greet"},
    }


@pytest.fixture(autouse=True)
def _public_schema_after_test() -> None:
    """Shadows tests/conftest.py's autouse fixture of the same name: engine tests never touch Django."""
    return
