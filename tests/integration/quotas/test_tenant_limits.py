"""Setting a tenant's quotas and isolation over the API and the CLI (platform admins), and reading them back."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.tenants.models import Tenant
from tests.integration.conftest import ApiClient

pytestmark = pytest.mark.django_db


def _limits(slug: str) -> tuple:
    return tuple(
        Tenant.objects.filter(slug=slug).values_list(
            "quota_workflows", "quota_executions", "isolation", "max_concurrent_runs", "name", "plan"
        )[0]
    )


def test_a_platform_admin_changes_only_what_is_given(admin_api):
    created = admin_api.post("/api/v1/tenants/", {"slug": "lim-api", "quota_workflows": 3, "max_concurrent_runs": 4})
    assert created.status_code == 201 and created.json()["max_concurrent_runs"] == 4

    response = admin_api.patch("/api/v1/tenants/lim-api/", {"quota_executions": 100, "isolation": "standard"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["quotas"] == {"workflows": 3, "executions": 100, "mail_per_day": None}
    assert (body["isolation"], body["max_concurrent_runs"]) == ("standard", 4)
    assert set(body["usage"]) == {"workflows", "executions_this_period", "period"}
    assert _limits("lim-api") == (3, 100, "standard", 4, "lim-api", "standard")

    response = admin_api.patch("/api/v1/tenants/lim-api/", {"quota_workflows": None, "max_concurrent_runs": None})
    assert (
        response.json()["quotas"] == {"workflows": None, "executions": 100, "mail_per_day": None}
        and response.json()["max_concurrent_runs"] is None
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quota_executions": -1}, "quota_executions"),
        ({"max_concurrent_runs": 0}, "max_concurrent_runs"),
        ({"isolation": "loose"}, "isolation"),
        ({"plan": "Gold Plan"}, "plan"),
        ({"slug": "renamed"}, "slug"),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(admin_api, body, field):
    admin_api.post("/api/v1/tenants/", {"slug": "lim-bad", "quota_executions": 5})
    before = _limits("lim-bad")
    response = admin_api.patch("/api/v1/tenants/lim-bad/", body)
    assert response.status_code == 400 and field in response.json()["fields"]
    assert _limits("lim-bad") == before


def test_a_tenant_owner_may_read_its_usage_but_not_change_its_quota(client, make_tenant):
    _, key = make_tenant("lim-owner", quota_executions=5)
    owner = ApiClient(client, key)
    assert owner.get("/api/v1/tenants/lim-owner/").json()["usage"]["executions_this_period"] == 0
    response = owner.patch("/api/v1/tenants/lim-owner/", {"quota_executions": None})
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert _limits("lim-owner")[1] == 5


def test_the_cli_creates_and_updates_limits(nexus):
    code, out, err = nexus("tenant", "create", "lim-cli", "--max-concurrent-runs=2", "--quota-executions=10", "--json")
    assert code == 0, err
    assert json.loads(out)["max_concurrent_runs"] == 2

    code, out, err = nexus("tenant", "update", "lim-cli", "--quota-executions=unlimited", "--quota-workflows=7", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["quotas"] == {"workflows": 7, "executions": None, "mail_per_day": None} and data["max_concurrent_runs"] == 2
    assert _limits("lim-cli") == (7, None, "strict", 2, "lim-cli", "standard")

    code, out, _ = nexus("tenant", "update", "lim-cli", "--max-concurrent-runs=default", "--name=Limited")
    assert code == 0 and "at most default runs at once" in out and "0 of 7" in out
    assert _limits("lim-cli") == (7, None, "strict", None, "Limited", "standard")

    code, _, err = nexus("tenant", "update", "lim-cli", "--max-concurrent-runs=0")
    assert code == 2 and "max_concurrent_runs" in err
    with pytest.raises(CommandError, match="'lots' is not a whole number"):  # the shell gets exit 2 and this
        call_command("nexus", "tenant", "update", "lim-cli", "--quota-workflows=lots")
    assert _limits("lim-cli") == (7, None, "strict", None, "Limited", "standard")
