"""Tests that template loops count against the deadline and an iteration budget, and that no filter,
method or operator builds a value past the size limit (refused before it is allocated)."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
from engine_helpers import run

from apps.engine import Limits

TRIPLE_LOOP = "{% set x = range(3000)|list %}{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}{% endfor %}"
# Peak traced allocation allowed while a template is refused; the refused values are 100 MB and up.
PEAK_BYTES = 20_000_000


def render(template: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    definition = {"nodes": [{"id": "t", "type": "template", "config": {"template": template}}], "outputs": {"out": "nodes.t"}}
    return run(definition, inputs or {}, **kwargs)


def test_nested_loops_stop_at_the_iteration_budget() -> None:
    started = time.monotonic()
    result = render(TRIPLE_LOOP)
    assert time.monotonic() - started < 2
    assert result.status == "failed"
    assert result.error == {
        "node": "t",
        "code": "template_budget_exceeded",
        "message": "template ran more than 100000 loop iterations (max_template_iterations)",
    }


def test_nested_loops_stop_at_the_run_deadline() -> None:
    started = time.monotonic()
    result = render(TRIPLE_LOOP, limits=Limits(max_template_iterations=10**12, max_run_seconds=0.3))
    assert time.monotonic() - started < 1.5
    assert result.status == "timed_out"
    assert result.error == {"node": "t", "code": "timeout", "message": "run exceeded its deadline"}


def test_loops_with_a_filter_stop_at_the_run_deadline() -> None:
    template = "{% for a in range(100000) if a is odd %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    result = render(template, limits=Limits(max_template_iterations=10**12, max_run_seconds=0.3))
    assert time.monotonic() - started < 1.5
    assert result.status == "timed_out"


def test_recursive_loops_count_every_level() -> None:
    template = "{% for a in range(10) recursive %}{% if loop.depth < 9 %}{{ loop(range(10)) }}{% endif %}{% endfor %}"
    started = time.monotonic()
    result = render(template)
    # 0.8 s on an idle core; all ten levels would be 10**10 iterations, so any bound in seconds proves the stop
    assert time.monotonic() - started < 10
    assert result.error["code"] == "template_budget_exceeded"


def test_loops_inside_recursive_macros_count() -> None:
    template = "{% macro f(n) %}{% for i in range(3) %}{% if n %}{{ f(n - 1) }}{% endif %}{% endfor %}{% endmacro %}{{ f(30) }}"
    result = render(template)
    assert result.error["code"] == "template_budget_exceeded"


def test_the_budget_is_a_limit_operators_set() -> None:
    template = "{% for a in range(30) %}{% for b in range(30) %}.{% endfor %}{% endfor %}"
    assert render(template, limits=Limits(max_template_iterations=930)).outputs == {"out": "." * 900}
    assert render(template, limits=Limits(max_template_iterations=929)).error["code"] == "template_budget_exceeded"


def test_range_is_capped_by_the_budget() -> None:
    result = render("{{ range(100001)|list|length }}")
    assert result.error == {
        "node": "t",
        "code": "template_budget_exceeded",
        "message": "range() of 100001 items is longer than max_template_iterations (100000)",
    }
    assert render("{{ range(100000)|list|length }}").outputs == {"out": "100000"}


def test_loops_and_loop_variables_still_work() -> None:
    template = (
        "{% for i in range(3) %}{{ loop.index }}/{{ loop.length }}{{ loop.cycle('a', 'b') }} {% endfor %}"
        "{% for i in [] %}{% else %}empty {% endfor %}"
        "{% for i in range(6) if i is odd %}{{ i }}{% endfor %} "
        "{% for k, v in inputs.d|dictsort %}{{ k }}={{ v }};{% endfor %}"
        "{% for n in inputs.tree recursive %}{{ n.name }}{% if n.kids %}({{ loop(n.kids) }}){% endif %}{% endfor %}"
    )
    tree = [{"name": "a", "kids": [{"name": "b", "kids": []}, {"name": "c", "kids": []}]}]
    result = render(template, {"d": {"y": 2, "x": 1}, "tree": tree})
    assert result.outputs == {"out": "1/3a 2/3b 3/3a empty 135 x=1;y=2;a(bc)"}


# Each refused before the large value exists: the traced peak stays far below its size.
REFUSED = [
    "{% set a = 'x'|center(400000000) %}{{ a|length }}",
    "{{ 'x'.center(400000000)|length }}",
    "{{ 'x'.ljust(400000000)|length }}",
    "{{ 'x'.rjust(400000000)|length }}",
    "{{ 'x'.zfill(400000000)|length }}",
    "{{ '{:>400000000}'.format('x')|length }}",
    "{{ '{:>{w}}'.format('x', w=400000000)|length }}",
    "{{ '{0}{0}{0}{0}{0}{0}{0}{0}'.format(inputs.big)|length }}",
    "{{ '{0!r}'.format([inputs.big] * 100)|length }}",
    "{{ '%400000000s'|format('x')|length }}",
    "{{ '%(a)s%(a)s%(a)s%(a)s%(a)s%(a)s'|format(a=inputs.big)|length }}",
    "{{ ('%400000000s' % 'x')|length }}",
    "{{ ('%.400000000f' % 1.5)|length }}",
    "{{ ('%*s' % (400000000, 'x'))|length }}",
    "{{ inputs.big|replace('x', 'yyyyyyyyyy')|length }}",
    "{{ inputs.big.replace('x', 'yyyyyyyyyy')|length }}",
    "{{ 'x'|replace('', 'y' * 1000000)|length }}",
    "{{ (inputs.big ~ ' ')|wordwrap(1, wrapstring='-' * 1000)|length }}",
    "{{ 'x'|indent(400000000) }}",
    "{{ ('\\n' * 100000)|indent(10000, blank=True)|length }}",
    "{{ ([inputs.big] * 1000)|join|length }}",
    "{{ ([inputs.big] * 1000)|join(',')|length }}",
    "{{ ('x' * 1000)|join('y' * 1000000)|length }}",
    "{{ ''.join([inputs.big] * 1000)|length }}",
    "{{ ([inputs.big] * 1000)|map('upper')|join|length }}",
    "{{ ([inputs.big] * 1000)|sum(start='')|length }}",
    "{{ ([inputs.big] * 1000)|string|length }}",
    "{{ ([inputs.big] * 1000)|tojson|length }}",
    "{{ ([inputs.big] * 1000)|pprint|length }}",
    "{{ [inputs.big] * 1000 }}",
    "{{ (([inputs.big] * 1000) ~ '')|length }}",
    "{{ inputs.big|truncate(10, end=inputs.big * 3)|length }}",
    "{% set t %}{% for i in range(1000) %}{{ inputs.big }}{% endfor %}{% endset %}{{ t|length }}",
    "{% macro m() %}{% for i in range(1000) %}{{ inputs.big }}{% endfor %}{% endmacro %}{{ m()|length }}",
    "{% filter upper %}{% for i in range(1000) %}{{ inputs.big }}{% endfor %}{% endfilter %}",
    "{{ ('x' * 400000000)|length }}",
    "{{ (inputs.big * 400)|length }}",
    "{{ (inputs.big + inputs.big + inputs.big)|length }}",
    "{{ ('\\t' * 100000).expandtabs(4000)|length }}",
    "{{ (1).to_bytes(400000000, 'big')|length }}",
    "{{ [1]|batch(400000000, 'x')|list|length }}",
    "{{ [1]|slice(400000000)|list|length }}",
    "{{ inputs.big|urlize(target='t' * 1000)|length }}",
]


@pytest.mark.parametrize("template", REFUSED)
def test_filters_methods_and_operators_are_refused_before_allocating(template: str) -> None:
    inputs = {"big": "x" * 900_000}
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = render(template, inputs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.status == "failed", result.outputs
    assert result.error["node"] == "t"
    assert result.error["code"] in {"payload_too_large", "template_error"}, result.error
    assert "Traceback" not in result.error["message"]
    assert peak < PEAK_BYTES


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 'ab'|center(6) }}", "  ab  "),
        ("{{ 'Hello %s, %d'|format('x', 3) }}", "Hello x, 3"),
        ("{{ '%(a)s-%(a)s'|format(a='y') }}", "y-y"),
        ("{{ '%05.1f' % 3.14159 }}", "003.1"),
        ("{{ '{} {:>5}|{:.2f}'.format('a', 'b', 2.5) }}", "a     b|2.50"),
        ("{{ '{n}!'.format_map({'n': 1}) }}", "1!"),
        ("{{ 'abc'|replace('b', 'XX') }}", "aXXc"),
        ("{{ 'a b c'|wordwrap(1) }}", "a\nb\nc"),
        ("{{ 'x\\ny'|indent(2) }}", "x\n  y"),
        ("{{ [1, 2, 3]|join(',') }}", "1,2,3"),
        ("{{ 'abc'.ljust(5, '.') }}|{{ 'abc'.rjust(5) }}|{{ '7'.zfill(3) }}", "abc..|  abc|007"),
        ("{{ {'a': [1, '<']}|tojson }}", '{"a": [1, "\\u003c"]}'),
        ("{{ {'b': 1, 'a': 2}|tojson(indent=1) }}", '{\n "a": 2,\n "b": 1\n}'),
        ("{{ 'hello world'|truncate(8, leeway=0) }}", "hello..."),
        ("{{ [1, 2, 3, 4, 5]|batch(2)|list }}", "[[1, 2], [3, 4], [5]]"),
        ("{{ [[1], [2]]|sum(start=[]) }}", "[1, 2]"),
        ("{{ ('ab' * 3) ~ [1] }}", "ababab[1]"),
        ("{{ (2 * 3) ~ (7 % 4) ~ (2 ** 10) }}", "631024"),
    ],
)
def test_guarded_filters_and_methods_give_jinjas_results(template: str, expected: str) -> None:
    result = render(template)
    assert result.status == "completed", result.error
    assert result.outputs == {"out": expected}


def test_large_values_within_the_limit_still_render() -> None:
    inputs = {"rows": [{"name": f"row {i}", "value": i} for i in range(1000)]}
    template = "{% for row in inputs.rows %}{{ row.name|center(12) }}{{ '%6d'|format(row.value) }}\n{% endfor %}"
    result = render(template, inputs)
    assert result.status == "completed"
    assert len(result.outputs["out"]) == 1000 * 19


def test_constant_folding_at_compile_time_does_not_allocate() -> None:
    from apps.engine.expressions import compile_template

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        compile_template("{{ 'x'|center(400000000) }}{{ [1]|batch(400000000, 0)|list }}{{ '%400000000s'|format(1) }}")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES
