"""Integration fixtures: a Django test client that speaks JSON with an API key, and tenant contexts."""

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection


class ApiClient:
    def __init__(self, client, key: str | None):
        self.client = client
        self.key = key

    def _headers(self) -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.key}"} if self.key else {}

    def get(self, path: str, **params):
        return self.client.get(path, params, **self._headers())

    def post(self, path: str, body=None, raw: str | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(path, data, content_type="application/json", **self._headers())

    def patch(self, path: str, body=None):
        return self.client.patch(path, json.dumps(body or {}), content_type="application/json", **self._headers())

    def delete(self, path: str):
        return self.client.delete(path, **self._headers())


@pytest.fixture
def api(client, nexus_world, db):
    def make(tenant: str = "acme", role: str = "owner", key: str | None = "__default__") -> ApiClient:
        raw = nexus_world["keys"][(tenant, role)] if key == "__default__" else key
        return ApiClient(client, raw)

    return make


@pytest.fixture
def acme(nexus_world, db):
    from django.db import connection

    tenant = nexus_world["tenants"]["acme"]
    connection.set_tenant(tenant)
    return tenant


@pytest.fixture
def owner(acme):
    from apps.core.principal import Principal

    return Principal(kind="api_key", actor="apikey:test-owner", tenant_id=acme.pk, tenant_slug="acme", role="owner")


@pytest.fixture
def make_user(nexus_world, db):
    """make_user("ann", acme="developer", globex="viewer") -> a local user with those memberships."""
    from django.db import connection

    from apps.accounts.services import membership_set, user_create

    def make(username: str, password: str = "a-long-password-1", *, platform_admin: bool = False, **roles: str):
        connection.set_schema_to_public()
        user = user_create(username=username, password=password, is_platform_admin=platform_admin)
        for slug, role in roles.items():
            membership_set(user=user, tenant=nexus_world["tenants"][slug], role=role)
        return user

    return make


@pytest.fixture
def login(client):
    """POST /api/v1/auth/token/ and return the response."""

    def post(username: str, password: str, tenant: str | None = None, **headers):
        body = {"username": username, "password": password}
        if tenant is not None:
            body["tenant"] = tenant
        return client.post("/api/v1/auth/token/", json.dumps(body), content_type="application/json", **headers)

    return post


@pytest.fixture
def nexus(capsys, monkeypatch):
    """nexus(*args, stdin=None) -> (exit code, stdout, stderr) of `manage.py nexus` run in-process, reading `stdin`
    (when given) as its standard input. The one in-process CLI helper of the integration tests."""

    def run(*args: str, stdin: str | None = None):
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = 0
        try:
            call_command("nexus", *args)
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
        connection.set_schema_to_public()
        return code, captured.out, captured.err

    return run
