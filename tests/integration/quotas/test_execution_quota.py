"""The execution quota on every channel and every kind of run: counted in Redis per period, refused past the
limit with quota_exceeded and no Execution row, never consumed by a run that is refused for another reason."""

import json
from datetime import UTC, datetime

import pytest
import redis

from apps.core import tasks
from apps.ops.redis_client import redis_client
from apps.quotas import services as quotas
from apps.quotas.periods import period_key
from apps.quotas.services import QuotaExceeded, execution_counter_key
from apps.runs import services as runs
from apps.runs.models import Execution
from apps.runs.services import run_execute, run_start
from apps.tenants.services import tenant_update
from apps.workflows.services import workflow_create, workflow_deploy
from tests.integration.conftest import ApiClient

pytestmark = pytest.mark.django_db

SLOW = {
    "nodes": [{"id": "wait", "type": "delay", "config": {"seconds": 1}}],
    "outputs": {"waited": "nodes.wait"},
}
PARENT = {
    "nodes": [{"id": "child", "type": "subworkflow", "config": {"workflow": "hello", "inputs": {"name": "'kid'"}}}],
    "outputs": {"child": "nodes.child"},
}


def _this_period() -> str:
    from django.utils import timezone

    return period_key(timezone.now(), "month")


@pytest.fixture
def deploy(principal_of, in_schema):
    def run(tenant, slug: str, **kwargs):
        owner = principal_of(tenant)
        in_schema(tenant, workflow_create, principal=owner, tenant_id=tenant.pk, slug=slug, **kwargs)
        in_schema(tenant, workflow_deploy, principal=owner, tenant_id=tenant.pk, ref=slug)

    return run


@pytest.fixture
def start(principal_of, in_schema):
    """run_start as a channel calls it: the connection on the tenant's schema."""

    def run(tenant, slug: str = "hello", inputs=None, **kwargs):
        kwargs.setdefault("channel", "api")
        return in_schema(
            tenant,
            run_start,
            principal=principal_of(tenant),
            tenant_id=tenant.pk,
            workflow_ref=slug,
            inputs={"name": "x"} if inputs is None else inputs,
            **kwargs,
        )

    return run


def _runs(tenant, in_schema) -> int:
    return in_schema(tenant, lambda: Execution.objects.count())


def _counter(tenant, period: str | None = None) -> int | None:
    value = redis_client().get(execution_counter_key(tenant.pk, period or _this_period()))
    return None if value is None else int(value)


def test_the_api_refuses_the_run_past_the_quota_and_stores_nothing(client, make_tenant, deploy, in_schema):
    tenant, key = make_tenant("exq-api", quota_executions=2)
    deploy(tenant, "hello", template="basic")
    api = ApiClient(client, key)
    for name in ("a", "b"):
        response = api.post("/api/v1/workflows/hello/execute/", {"inputs": {"name": name}})
        assert response.status_code == 200 and response.json()["status"] == "completed"

    refused = api.post("/api/v1/workflows/hello/execute/", {"inputs": {"name": "c"}})

    period = _this_period()
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": f"tenant 'exq-api' has used its 2 executions for {period}",
        "code": "quota_exceeded",
        "fields": {"quota": "executions", "limit": 2, "period": period},
    }
    assert _runs(tenant, in_schema) == 2 and _counter(tenant) == 2
    detail = api.get("/api/v1/tenants/exq-api/").json()
    assert detail["quotas"] == {"workflows": None, "executions": 2, "mail_per_day": None}
    assert detail["usage"] == {"workflows": 1, "executions_this_period": 2, "period": period}


def test_a_run_refused_for_its_inputs_does_not_use_the_quota(client, make_tenant, deploy, in_schema):
    tenant, key = make_tenant("exq-inputs", quota_executions=1)
    deploy(tenant, "hello", template="basic")
    api = ApiClient(client, key)
    for _ in range(3):
        assert api.post("/api/v1/workflows/hello/execute/", {"inputs": {"name": 5}}).status_code == 400
    assert api.post("/api/v1/workflows/missing/execute/", {}).status_code == 404

    assert api.post("/api/v1/workflows/hello/execute/", {"inputs": {"name": "ok"}}).status_code == 200
    assert api.post("/api/v1/workflows/hello/execute/", {"inputs": {"name": "no"}}).status_code == 403
    assert _runs(tenant, in_schema) == 1


def test_the_cli_counts_test_runs_and_exits_4_past_the_quota(nexus, make_tenant, deploy, in_schema):
    tenant, _ = make_tenant("exq-cli", quota_executions=2)
    deploy(tenant, "hello", template="basic")
    code, out, err = nexus("--tenant=exq-cli", "test", "hello", '--input={"name": "t"}', "--json")
    assert code == 0 and json.loads(out) == {"message": "Hello, t!"}, err
    code, _, err = nexus("--tenant=exq-cli", "run", "hello", '--input={"name": "r"}', "--json")
    assert code == 0, err

    code, out, err = nexus("--tenant=exq-cli", "run", "hello", '--input={"name": "r"}', "--json")

    assert (code, out) == (4, "")
    assert json.loads(err)["error"]["code"] == "quota_exceeded"
    assert json.loads(err)["error"]["fields"]["limit"] == 2
    assert _runs(tenant, in_schema) == 2
    code, out, _ = nexus("tenant", "show", "exq-cli", "--json")
    assert json.loads(out)["usage"] == {"workflows": 1, "executions_this_period": 2, "period": _this_period()}
    code, out, _ = nexus("tenant", "show", "exq-cli")
    assert "2 in " in out and "of 2" in out


def test_a_queued_run_counts_and_goes_to_the_tenants_queue(
    make_tenant, deploy, start, in_schema, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(tasks.celery_app, "send_task", lambda name, **options: sent.append((name, options)))
    strict, _ = make_tenant("exq-queued", quota_executions=1)
    standard, _ = make_tenant("exq-shared", isolation="standard")
    deploy(strict, "slow", definition=SLOW)
    deploy(standard, "slow", definition=SLOW)

    with django_capture_on_commit_callbacks(execute=True):
        queued = start(strict, "slow", inputs={}, wait=False)
    with pytest.raises(QuotaExceeded), django_capture_on_commit_callbacks(execute=True):
        start(strict, "slow", inputs={}, wait=False)
    with django_capture_on_commit_callbacks(execute=True):
        shared = start(standard, "slow", inputs={}, wait=False)

    assert queued.status == "queued" and _runs(strict, in_schema) == 1
    assert [(name, options["queue"], options["task_id"], options["headers"]) for name, options in sent] == [
        ("runs.execute", "nexus.t.t_exq_queued", queued.id, {"_schema_name": "t_exq_queued"}),
        ("runs.execute", "nexus", shared.id, {"_schema_name": "t_exq_shared"}),
    ]


def test_runs_stored_before_the_quota_count_towards_it(make_tenant, deploy, start, in_schema, admin_principal):
    tenant, _ = make_tenant("exq-seed")
    deploy(tenant, "hello", template="basic")
    for _ in range(3):
        start(tenant)
    assert _counter(tenant) is None  # no quota: nothing is counted in Redis

    tenant_update(principal=admin_principal, slug="exq-seed", quota_executions=4)
    start(tenant)  # the counter is seeded from the 3 stored runs
    with pytest.raises(QuotaExceeded):
        start(tenant)

    assert _runs(tenant, in_schema) == 4 and _counter(tenant) == 4


def test_child_runs_count_and_a_refused_child_fails_its_parent(make_tenant, deploy, start, in_schema, admin_principal):
    tenant, _ = make_tenant("exq-child", quota_executions=2)
    deploy(tenant, "hello", template="basic")
    deploy(tenant, "parent", definition=PARENT)
    first = start(tenant, "parent", inputs={}, wait=False)
    assert in_schema(tenant, run_execute, run_id=first.id) == "completed"
    assert _runs(tenant, in_schema) == 2 and _counter(tenant) == 2

    tenant_update(principal=admin_principal, slug="exq-child", quota_executions=3)  # one more parent, not its child
    second = start(tenant, "parent", inputs={}, wait=False)

    assert in_schema(tenant, run_execute, run_id=second.id) == "failed"
    failed = in_schema(tenant, lambda: Execution.objects.get(id=second.id))
    assert failed.error["code"] == "quota_exceeded"
    assert _runs(tenant, in_schema) == 3 and _counter(tenant) == 3


def test_the_counter_starts_again_with_each_period(make_tenant, deploy, start, in_schema, monkeypatch):
    tenant, _ = make_tenant("exq-period", quota_executions=1)
    deploy(tenant, "hello", template="basic")
    clock = {"now": datetime(2030, 1, 31, 23, 59, 59, tzinfo=UTC)}
    monkeypatch.setattr(quotas.timezone, "now", lambda: clock["now"])
    start(tenant)
    with pytest.raises(QuotaExceeded) as refused:
        start(tenant)
    assert refused.value.fields["period"] == "2030-01"

    clock["now"] = datetime(2030, 2, 1, 0, 0, 1, tzinfo=UTC)
    start(tenant)

    assert _counter(tenant, "2030-01") == 1 and _counter(tenant, "2030-02") == 1
    ttl = redis_client().ttl(execution_counter_key(tenant.pk, "2030-02"))
    expires = datetime(2030, 3, 2, tzinfo=UTC).timestamp()  # a day after the period ends
    assert abs((datetime.now(UTC).timestamp() + ttl) - expires) < 5


def test_a_daily_period(make_tenant, deploy, start, settings, monkeypatch):
    settings.NEXUS_QUOTA_PERIOD = "day"
    tenant, _ = make_tenant("exq-daily", quota_executions=1)
    deploy(tenant, "hello", template="basic")
    monkeypatch.setattr(quotas.timezone, "now", lambda: datetime(2030, 5, 6, 12, tzinfo=UTC))
    start(tenant)
    with pytest.raises(QuotaExceeded) as refused:
        start(tenant)
    assert refused.value.fields == {"quota": "executions", "limit": 1, "period": "2030-05-06"}


def test_a_run_that_is_not_stored_gives_its_execution_back(make_tenant, deploy, start, in_schema, monkeypatch):
    tenant, _ = make_tenant("exq-release", quota_executions=1)
    deploy(tenant, "hello", template="basic")

    def broken(execution, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(runs, "execution_insert", broken)
    with pytest.raises(RuntimeError):
        start(tenant)
    assert _counter(tenant) == 0
    monkeypatch.undo()

    start(tenant)
    assert _runs(tenant, in_schema) == 1 and _counter(tenant) == 1


def test_without_redis_the_database_count_decides(make_tenant, deploy, start, in_schema, monkeypatch):
    tenant, _ = make_tenant("exq-noredis", quota_executions=1)
    deploy(tenant, "hello", template="basic")

    def down():
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(quotas, "_scripts", down)
    start(tenant)
    with pytest.raises(QuotaExceeded):
        start(tenant)
    assert _runs(tenant, in_schema) == 1


def test_a_tenant_without_quota_never_reaches_the_counter(make_tenant, deploy, start, in_schema, monkeypatch):
    tenant, _ = make_tenant("exq-unlimited")
    deploy(tenant, "hello", template="basic")

    def counted(**kwargs):
        raise AssertionError("the quota service was called for a tenant without quota")

    monkeypatch.setattr(runs, "execution_quota_consume", counted)
    for _ in range(5):
        assert start(tenant).status == "completed"
    assert _runs(tenant, in_schema) == 5
