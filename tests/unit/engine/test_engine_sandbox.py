"""Tests that tenant templates and expressions cannot escape the sandbox or exhaust resources."""

from __future__ import annotations

import time
from typing import Any

import pytest
from engine_helpers import run

from apps.engine import Limits

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ inputs.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ range.__self__ }}",
    "{{ inputs.name.__class__.__base__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ [].__class__ }}",
    "{{ inputs['__class__'] }}",
    "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    "{{ inputs.list.append(1) }}",
    "{{ inputs.update({'a': 1}) }}",
    "{{ '{0.__class__}'.format(inputs) }}",
    "{{ lipsum(1000000) }}",
    "{{ config }}",
    "{{ request }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escape_attempts_fail_as_node_errors(template: str) -> None:
    definition = {
        "nodes": [{"id": "evil", "type": "template", "config": {"template": template}}],
        "outputs": {"out": "nodes.evil"},
    }
    result = run(definition, {"name": "x", "list": [1]})
    assert result.status == "failed", result.outputs
    assert result.error["node"] == "evil"
    assert result.error["code"] in {"sandbox_violation", "template_undefined", "template_error"}
    assert "Traceback" not in result.error["message"]


def test_dunder_access_is_reported_as_sandbox_violation() -> None:
    result = run({"nodes": [{"id": "evil", "type": "template", "config": {"template": "{{ ''.__class__.__mro__ }}"}}]})
    assert result.error["code"] == "sandbox_violation"


def template_result(template: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    definition = {"nodes": [{"id": "t", "type": "template", "config": {"template": template}}]}
    return run(definition, inputs or {}, **kwargs)


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{% set s = 'xxxxxxxxxx' %}" + "{% set s = s ~ s %}" * 40 + "{{ s | length }}",
        "{% set s = 'xxxxxxxxxx' %}" + "{% set s = s + s %}" * 40 + "{{ s | length }}",
        "{% set ns = namespace(s='xx') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% for i in range(1000) %}{% for j in range(1000) %}{{ 'xxxxxxxxxx' }}{% endfor %}{% endfor %}",
    ],
)
def test_template_growth_is_bounded(template: str) -> None:
    started = time.monotonic()
    result = template_result(template, limits=Limits(max_payload_bytes=100_000))
    assert time.monotonic() - started < 2
    assert result.status == "failed"
    assert result.error["code"] == "payload_too_large"


def test_huge_exponent_is_refused() -> None:
    result = template_result("{{ 10 ** 100000000 }}")
    assert result.status == "failed"
    assert result.error["code"] == "template_error"


def test_huge_range_is_refused() -> None:
    result = template_result("{% for i in range(10 ** 9) %}{% endfor %}")
    assert result.status == "failed"


def test_recursive_macro_is_stopped_by_the_deadline() -> None:
    template = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    started = time.monotonic()
    result = template_result(template, deadline=time.monotonic() + 0.2)
    assert time.monotonic() - started < 2
    assert result.status == "timed_out"
    assert result.error == {"node": "t", "code": "timeout", "message": "run exceeded its deadline"}


def test_slow_template_exceeding_node_timeout_is_a_node_failure() -> None:
    template = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    definition = {"nodes": [{"id": "t", "type": "template", "config": {"template": template}, "timeout_s": 0.05}]}
    result = run(definition)
    assert result.status == "failed"
    assert result.error["code"] == "timeout"


def transform_result(expression: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    definition = {"nodes": [{"id": "x", "type": "transform", "config": {"expression": expression}}]}
    return run(definition, inputs or {}, **kwargs)


def test_jmespath_shared_structure_blowup_is_bounded() -> None:
    expression = " | ".join(["[@, @, @, @]"] * 40) + " | to_string(@)"
    started = time.monotonic()
    result = transform_result(expression, {"x": 1})
    assert time.monotonic() - started < 2
    assert result.status == "failed"
    assert result.error["code"] == "payload_too_large"


def test_jmespath_flatten_blowup_is_bounded() -> None:
    expression = "inputs.xs" + " | [@, @, @, @, @, @, @, @, @, @][]" * 8
    started = time.monotonic()
    result = transform_result(expression, {"xs": list(range(100))})
    assert time.monotonic() - started < 2
    assert result.status == "failed"
    assert result.error["code"] in {"payload_too_large", "fanout_exceeded"}


def test_jmespath_comparison_of_towers_is_bounded() -> None:
    tower = " | ".join(["[@, @]"] * 40)
    expression = f"[({tower}), ({tower})] | [0] == [1]"
    started = time.monotonic()
    result = transform_result(expression, {})
    assert time.monotonic() - started < 2
    assert result.status == "failed"


def test_legitimate_expressions_on_large_inputs_still_work() -> None:
    rows = [{"id": i, "name": f"row {i}"} for i in range(1000)]
    result = transform_result("{ids: inputs.rows[*].id, n: length(inputs.rows)}", {"rows": rows})
    assert result.status == "completed"
