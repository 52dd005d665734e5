"""The workflow quota on every channel: the N+1th creation is refused with quota_exceeded and stores nothing."""

import json

import pytest

from apps.quotas.services import QuotaExceeded
from apps.workflows.models import Workflow
from apps.workflows.services import workflow_create, workflow_delete
from tests.integration.conftest import ApiClient

pytestmark = pytest.mark.django_db


def _slugs(tenant, in_schema) -> list[str]:
    return in_schema(tenant, lambda: list(Workflow.objects.filter(deleted_at__isnull=True).values_list("slug", flat=True)))


def test_the_api_refuses_the_workflow_past_the_quota_and_stores_nothing(client, make_tenant, in_schema):
    tenant, key = make_tenant("wfq-api", quota_workflows=2)
    api = ApiClient(client, key)
    for slug in ("one", "two"):
        assert api.post("/api/v1/workflows/", {"slug": slug, "template": "basic"}).status_code == 201

    response = api.post("/api/v1/workflows/", {"slug": "three", "template": "basic"})

    assert response.status_code == 403
    assert response.json() == {
        "detail": "tenant 'wfq-api' has reached its limit of 2 workflows",
        "code": "quota_exceeded",
        "fields": {"quota": "workflows", "limit": 2},
    }
    assert _slugs(tenant, in_schema) == ["one", "two"]
    detail = api.get("/api/v1/tenants/wfq-api/").json()
    assert detail["quotas"] == {"workflows": 2, "executions": None, "mail_per_day": None}
    assert detail["usage"]["workflows"] == 2 and detail["usage"]["executions_this_period"] == 0


def test_the_cli_refuses_with_exit_4_and_json_on_stderr(nexus, make_tenant, in_schema):
    tenant, _ = make_tenant("wfq-cli", quota_workflows=1)
    code, _, err = nexus("--tenant=wfq-cli", "create", "workflow", "first", "--template=basic", "--json")
    assert code == 0, err

    code, out, err = nexus("--tenant=wfq-cli", "workflow", "create", "second", "--template=basic", "--json")

    assert (code, out) == (4, "")
    assert json.loads(err)["error"] == {
        "detail": "tenant 'wfq-cli' has reached its limit of 1 workflows",
        "code": "quota_exceeded",
        "fields": {"quota": "workflows", "limit": 1},
    }
    assert _slugs(tenant, in_schema) == ["first"]
    code, out, _ = nexus("tenant", "show", "wfq-cli", "--json")
    assert code == 0 and json.loads(out)["usage"]["workflows"] == 1


def test_a_deleted_workflow_frees_its_place(make_tenant, principal_of, in_schema):
    tenant, _ = make_tenant("wfq-delete", quota_workflows=1)
    owner = principal_of(tenant)
    in_schema(tenant, workflow_create, principal=owner, tenant_id=tenant.pk, slug="old", template="basic")
    with pytest.raises(QuotaExceeded):
        in_schema(tenant, workflow_create, principal=owner, tenant_id=tenant.pk, slug="new", template="basic")

    in_schema(tenant, workflow_delete, principal=owner, tenant_id=tenant.pk, ref="old")
    in_schema(tenant, workflow_create, principal=owner, tenant_id=tenant.pk, slug="new", template="basic")

    assert _slugs(tenant, in_schema) == ["new"]


def test_a_quota_of_zero_refuses_the_first_and_a_tenant_without_quota_is_unaffected(make_tenant, principal_of, in_schema):
    closed, _ = make_tenant("wfq-zero", quota_workflows=0)
    open_, _ = make_tenant("wfq-open")
    with pytest.raises(QuotaExceeded) as refused:
        in_schema(closed, workflow_create, principal=principal_of(closed), tenant_id=closed.pk, slug="a", template="basic")
    assert refused.value.status == 403 and refused.value.fields == {"quota": "workflows", "limit": 0}

    for number in range(5):
        in_schema(open_, workflow_create, principal=principal_of(open_), tenant_id=open_.pk, slug=f"w{number}", template="basic")

    assert _slugs(closed, in_schema) == [] and len(_slugs(open_, in_schema)) == 5


def test_an_invalid_definition_is_a_400_even_at_the_limit(client, make_tenant):
    _, key = make_tenant("wfq-invalid", quota_workflows=0)
    response = ApiClient(client, key).post("/api/v1/workflows/", {"slug": "bad", "definition": {"nodes": "no"}})
    assert response.status_code == 400
