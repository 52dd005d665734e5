"""The access matrix: every tenant-scoped API endpoint and CLI verb, called as every role and as another
tenant's owner. Allowed calls succeed; refused ones answer 403 (role) or 404 (other tenant) and change nothing."""

import json

import pytest
from django.db import connection

from apps.accounts.services import membership_set, user_create
from apps.datasets.models import Dataset
from apps.integrations.models import Application
from apps.runs.models import Execution
from apps.workflows.models import Deployment, Workflow, WorkflowVersion

pytestmark = pytest.mark.django_db

RANK = {"viewer": 1, "operator": 2, "developer": 3, "admin": 4, "owner": 5}
ROLES = ["viewer", "operator", "developer", "admin", "owner"]

# (name, method, path, body, least role allowed). `hello` is a deployed basic workflow; `{run}` a finished run.
API_CASES = [
    ("list workflows", "get", "/api/v1/workflows/", None, "viewer"),
    ("show workflow", "get", "/api/v1/workflows/hello/", None, "viewer"),
    ("create workflow", "post", "/api/v1/workflows/", {"slug": "made", "template": "basic"}, "developer"),
    ("update workflow", "patch", "/api/v1/workflows/hello/", {"description": "changed"}, "developer"),
    ("deploy workflow", "post", "/api/v1/workflows/hello/deploy/", {"environment": "staging"}, "developer"),
    ("test workflow", "post", "/api/v1/workflows/hello/test/", {"inputs": {"name": "t"}}, "developer"),
    ("execute workflow", "post", "/api/v1/workflows/hello/execute/", {"inputs": {"name": "x"}}, "operator"),
    ("delete workflow", "delete", "/api/v1/workflows/hello/", None, "developer"),
    ("list executions", "get", "/api/v1/executions/", None, "viewer"),
    ("show execution", "get", "/api/v1/executions/{run}/", None, "viewer"),
    ("list datasets", "get", "/api/v1/datasets/", None, "viewer"),
    ("upload dataset", "post", "/api/v1/datasets/", {"name": "nums", "rows": [{"n": 1}]}, "developer"),
    ("list artifacts", "get", "/api/v1/artifacts/", None, "viewer"),
    ("list mail", "get", "/api/v1/mail/", None, "operator"),
    # API applications: admins and owners (`{app}` is an application of acme, registered by its owner)
    ("list apps", "get", "/api/v1/apps/", None, "admin"),
    ("register app", "post", "/api/v1/apps/", {"name": "matrix"}, "admin"),
    ("show app", "get", "/api/v1/apps/{app}/", None, "admin"),
    ("update app", "patch", "/api/v1/apps/{app}/", {"name": "changed"}, "admin"),
    ("rotate app", "post", "/api/v1/apps/{app}/rotate/", {}, "admin"),
    ("revoke app", "post", "/api/v1/apps/{app}/revoke/", {}, "admin"),
]


def _state(tenant) -> tuple:
    connection.set_tenant(tenant)
    state = (
        Workflow.objects.filter(deleted_at__isnull=True).count(),
        WorkflowVersion.objects.count(),
        Deployment.objects.count(),
        Execution.objects.count(),
        Dataset.objects.count(),
        tuple(Workflow.objects.values_list("description", flat=True)),
    )
    connection.set_schema_to_public()
    apps = Application.objects.filter(tenant=tenant).order_by("id")
    return (*state, tuple(apps.values_list("name", "api_key_id", "webhook_secret_salt", "revoked_at")))


@pytest.fixture
def seeded(api):
    owner = api()
    assert owner.post("/api/v1/workflows/", {"slug": "hello", "template": "basic"}).status_code == 201
    assert owner.post("/api/v1/workflows/hello/deploy/", {}).status_code == 200
    run = owner.post("/api/v1/workflows/hello/execute/", {"inputs": {"name": "seed"}}).json()
    app = owner.post("/api/v1/apps/", {"name": "seeded"}).json()
    return {"run": run["execution_id"], "app": app["id"]}


def _call(client, method, path, body):
    if method == "get":
        return client.get(path)
    if method == "delete":
        return client.delete(path)
    return getattr(client, method)(path, body or {})


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "path", "body", "least"), API_CASES, ids=[c[0] for c in API_CASES])
def test_api_matrix(api, seeded, nexus_world, role, name, method, path, body, least):
    acme = nexus_world["tenants"]["acme"]
    path = path.format(**seeded)
    before = _state(acme)
    response = _call(api(role=role), method, path, body)
    if RANK[role] >= RANK[least]:
        assert response.status_code < 400, (name, role, response.content)
    else:
        assert response.status_code == 403, (name, role, response.content)
        assert response.json()["code"] == "permission_denied"
        assert _state(acme) == before, f"{name} as {role} changed something"


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "least"),
    [c for c in API_CASES if "{run}" in c[2] or "{app}" in c[2] or "/hello/" in c[2]],
    ids=[c[0] for c in API_CASES if "{run}" in c[2] or "{app}" in c[2] or "/hello/" in c[2]],
)
def test_another_tenants_owner_finds_nothing(api, seeded, nexus_world, name, method, path, body, least):
    acme = nexus_world["tenants"]["acme"]
    before = _state(acme)
    response = _call(api(tenant="globex", role="owner"), method, path.format(**seeded), body)
    assert response.status_code == 404, (name, response.content)
    assert response.json()["code"].endswith("not_found")
    assert _state(acme) == before


CLI_CASES = [
    ("workflow list", ["workflow", "list"], "viewer"),
    ("workflow show", ["workflow", "show", "hello"], "viewer"),
    ("create workflow", ["create", "workflow", "made"], "developer"),
    ("deploy", ["deploy", "hello", "--env", "staging"], "developer"),
    ("test", ["test", "hello", '--input={"name": "c"}'], "developer"),
    ("run", ["run", "hello", '--input={"name": "c"}'], "operator"),
    ("history", ["history"], "viewer"),
    ("workflow delete", ["workflow", "delete", "hello"], "developer"),
    ("apikey create", ["apikey", "create", "--role", "viewer"], "admin"),
    ("app list", ["app", "list"], "admin"),
    ("app register", ["app", "register", "--name", "cli"], "admin"),
    ("dataset list", ["dataset", "list"], "viewer"),
    ("mail list", ["mail", "list"], "operator"),
]


@pytest.fixture
def members(nexus_world):
    connection.set_schema_to_public()
    for role in ROLES:
        user = user_create(username=f"m-{role}", password="a-long-password-123")
        membership_set(user=user, tenant=nexus_world["tenants"]["acme"], role=role)
    outsider = user_create(username="outsider", password="a-long-password-123")
    membership_set(user=outsider, tenant=nexus_world["tenants"]["globex"], role="owner")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "args", "least"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_matrix(nexus, seeded, members, nexus_world, role, name, args, least):
    acme = nexus_world["tenants"]["acme"]
    before = _state(acme)
    code, out, err = nexus("--tenant=acme", f"--as=m-{role}", *args, "--json")
    if RANK[role] >= RANK[least]:
        assert code == 0, (name, role, err)
        json.loads(out)
    else:
        assert code == 4 and out == "" and "may not" in err, (name, role, code, err)
        assert _state(acme) == before


def test_cli_as_a_member_of_another_tenant_is_refused(nexus, seeded, members, nexus_world):
    code, out, err = nexus("--tenant=acme", "--as=outsider", "workflow", "list")
    assert code == 3 and "not a member" in err and out == ""


def test_three_tenants_with_the_same_slug_never_reach_each_other(api, nexus_world, nexus):
    """default, acme and globex each own a `shared` workflow: every cross-tenant read, run or change is refused."""
    from apps.accounts.services import apikey_create
    from apps.core.principal import Principal

    tenants = {slug: nexus_world["tenants"].get(slug) for slug in ("acme", "globex")}
    from apps.tenants.models import Tenant

    connection.set_schema_to_public()
    tenants["default"] = Tenant.objects.get(slug="default")
    system = Principal(
        kind="system",
        actor="system:test",
        tenant_id=tenants["default"].pk,
        tenant_slug="default",
        role="owner",
        is_platform_admin=True,
    )
    _, default_key = apikey_create(principal=system, tenant=tenants["default"], role="owner")
    clients = {"acme": api(tenant="acme"), "globex": api(tenant="globex"), "default": api(key=default_key)}
    ids = {}
    for slug, client in clients.items():
        created = client.post("/api/v1/workflows/", {"slug": "shared", "template": "basic"}).json()
        client.post("/api/v1/workflows/shared/deploy/", {})
        ids[slug] = created["id"]
    for caller, client in clients.items():
        for owner_slug, workflow_id in ids.items():
            if owner_slug == caller:
                assert client.get(f"/api/v1/workflows/{workflow_id}/").status_code == 200
                continue
            before = _state(tenants[owner_slug])
            assert client.get(f"/api/v1/workflows/{workflow_id}/").status_code == 404
            assert client.post(f"/api/v1/workflows/{workflow_id}/execute/", {"inputs": {"name": "x"}}).status_code == 404
            assert client.patch(f"/api/v1/workflows/{workflow_id}/", {"description": "x"}).status_code == 404
            assert client.delete(f"/api/v1/workflows/{workflow_id}/").status_code == 404
            assert _state(tenants[owner_slug]) == before
            code, out, err = nexus(f"--tenant={caller}", "workflow", "show", workflow_id)
            assert code == 3 and out == "" and "does not exist" in err
        # by slug, each tenant reaches only its own
        assert client.get("/api/v1/workflows/shared/").json()["id"] == ids[caller]
