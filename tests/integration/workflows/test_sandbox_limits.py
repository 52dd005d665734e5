"""Through the REST test endpoint: template loops stop at the budget or the deadline, and input-schema
patterns cannot hang the request (RE2); patterns RE2 cannot run are refused when the workflow is saved."""

import time

import pytest

from apps.runs.models import Execution
from apps.runs.services import run_execute

pytestmark = pytest.mark.django_db

TRIPLE_LOOP = "{% set x = range(3000)|list %}{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}{% endfor %}"
LOOPS = {"nodes": [{"id": "loop", "type": "template", "config": {"template": TRIPLE_LOOP}}], "outputs": {"out": "nodes.loop"}}
EVIL_PATTERN = {
    "inputs": {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}, "required": ["code"]},
    "nodes": [{"id": "echo", "type": "template", "config": {"template": "{{ inputs.code }}"}}],
    "outputs": {"code": "nodes.echo"},
}


def test_template_loops_end_the_test_run_failed_at_the_iteration_budget(api):
    owner = api()
    assert owner.post("/api/v1/workflows/", {"slug": "loops", "definition": LOOPS}).status_code == 201
    started = time.monotonic()
    response = owner.post("/api/v1/workflows/loops/test/", {"inputs": {}})
    assert time.monotonic() - started < 5
    body = response.json()
    assert (response.status_code, body["status"]) == (200, "failed")
    assert body["error"] == {
        "node": "loop",
        "code": "template_budget_exceeded",
        "message": "template ran more than 100000 loop iterations (max_template_iterations)",
    }


def test_template_loops_end_the_run_timed_out_at_the_deadline(api, acme, settings):
    # A budget too large to matter: only the deadline can stop these loops.
    settings.NEXUS_ENGINE_LIMITS = {**settings.NEXUS_ENGINE_LIMITS, "max_template_iterations": 10**12, "max_run_seconds": 1.0}
    settings.NEXUS_INLINE_BUDGET_S = 0.3
    settings.NEXUS_WAIT_TIMEOUT_S = 0.2
    owner = api()
    assert owner.post("/api/v1/workflows/", {"slug": "loops-deadline", "definition": LOOPS}).status_code == 201
    started = time.monotonic()
    response = owner.post("/api/v1/workflows/loops-deadline/test/", {"inputs": {}})
    # The web process gave up at its inline budget and handed the run to a worker: the call returned.
    assert time.monotonic() - started < 3
    run_id = response.json()["id"]
    assert Execution.objects.get(id=run_id).status == "queued"
    started = time.monotonic()
    assert run_execute(run_id=run_id) == "timed_out"  # what the worker does with it
    assert time.monotonic() - started < 3
    run = Execution.objects.get(id=run_id)
    assert run.error == {"node": "loop", "code": "timeout", "message": "run exceeded its deadline"}


def test_a_backtracking_input_pattern_refuses_the_input_at_once(api):
    owner = api()
    assert owner.post("/api/v1/workflows/", {"slug": "redos", "definition": EVIL_PATTERN}).status_code == 201
    attack = "a" * 48 + "!"
    started = time.monotonic()
    response = owner.post("/api/v1/workflows/redos/test/", {"inputs": {"code": attack}})
    assert time.monotonic() - started < 1
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_inputs"
    assert body["fields"] == {"inputs.code": f"{attack!r} does not match '^(a+)+$'"}
    good = owner.post("/api/v1/workflows/redos/test/", {"inputs": {"code": "aaaa"}}).json()
    assert (good["status"], good["outputs"]) == ("completed", {"code": "aaaa"})


def test_patterns_re2_cannot_run_are_refused_when_saving(api):
    owner = api()
    definition = {
        **EVIL_PATTERN,
        "inputs": {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a)\\1$"}}},
        "tests": [{"name": "t", "inputs": {"code": "x"}, "expect_schema": {"properties": {"code": {"pattern": "(?=x)"}}}}],
    }
    response = owner.post("/api/v1/workflows/", {"slug": "backref", "definition": definition})
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "definition.inputs.properties.code.pattern": "unsupported regular expression: invalid escape sequence: \\1",
        "definition.tests[0].expect_schema.properties.code.pattern": "unsupported regular expression: invalid perl operator: (?=",
    }
    validate = owner.post("/api/v1/workflows/validate/", {"definition": definition})
    assert validate.status_code == 400
    assert "definition.inputs.properties.code.pattern" in validate.json()["fields"]
    assert owner.get("/api/v1/workflows/").json()["count"] == 0


def test_test_case_expectations_match_patterns_with_re2(api):
    owner = api()
    attack = "a" * 48 + "!"
    definition = {
        "nodes": [{"id": "t", "type": "template", "config": {"template": attack}}],
        "outputs": {"out": "nodes.t"},
        "tests": [{"name": "evil", "expect_schema": {"properties": {"out": {"pattern": "^(a+)+$"}}}}],
    }
    assert owner.post("/api/v1/workflows/", {"slug": "expect-redos", "definition": definition}).status_code == 201
    started = time.monotonic()
    report = owner.post("/api/v1/workflows/expect-redos/test/", {"suite": "all"}).json()
    assert time.monotonic() - started < 2
    assert report["cases"][0]["failures"] == [f"out: {attack!r} does not match '^(a+)+$'"]
