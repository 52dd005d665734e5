"""Tests of the payload checker that guards every value crossing a node or run boundary."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.engine import NodeError
from apps.engine.payload import check_payload

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values, st.integers(min_value=-3, max_value=3))
def test_agrees_with_exact_json_size(value: Any, delta: int) -> None:
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    limit = max(size + delta, 0)
    if size <= limit:
        check_payload(value, limit)
    else:
        with pytest.raises(NodeError) as info:
            check_payload(value, limit)
        assert info.value.code == "payload_too_large"


def test_shared_structure_is_rejected_without_encoding_it() -> None:
    value: Any = "x"
    for _ in range(60):
        value = [value, value]
    with pytest.raises(NodeError) as info:
        check_payload(value, 1_000_000)
    assert info.value.code == "payload_too_large"


def test_self_reference_is_rejected() -> None:
    value: list[Any] = []
    value.append(value)
    with pytest.raises(NodeError):
        check_payload(value, 1000)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1: "a"}, {"a": {1, 2}}, object(), b"bytes"])
def test_non_json_values(value: Any) -> None:
    with pytest.raises(NodeError) as info:
        check_payload(value, 1000)
    assert info.value.code == "invalid_output"
    assert info.value.retryable is False


def test_subclasses_of_json_types_are_accepted() -> None:
    check_payload(OrderedDict(a=[1, 2.5, True, None]), 1000)
    check_payload((1, 2), 1000)


def test_message_names_the_value() -> None:
    with pytest.raises(NodeError, match="output of node 'x' exceeds the payload limit of 3 bytes"):
        check_payload("long", 3, "output of node 'x'")
