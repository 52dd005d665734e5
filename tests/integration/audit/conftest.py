"""Audit fixtures: the rows a test wrote, the `nexus` command, a platform-admin API client, users."""

import pytest
from django.db import connection


@pytest.fixture
def audit_rows(nexus_world, db):
    """audit_rows(after=seq, **filters) -> the rows written since the test began (or since row `after`), oldest
    first: those of the test's own transaction and those committed meanwhile on a connection of their own
    (denials, failed logins)."""
    from apps.audit.models import AuditEvent

    mark = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    def rows(*, after: int = 0, **filters):
        return list(AuditEvent.objects.filter(seq__gt=max(mark, after), **filters).order_by("seq"))

    return rows


@pytest.fixture
def admin_api(client, nexus_world):
    """An API client authenticated as a platform admin: a real login (JWT) of the superuser `platform-admin`."""

    from apps.accounts.services import user_create
    from tests.integration.conftest import ApiClient

    connection.set_schema_to_public()
    user_create(username="platform-admin", password="a-long-password-123", is_platform_admin=True)
    body = {"username": "platform-admin", "password": "a-long-password-123", "tenant": "acme"}
    response = client.post("/api/v1/auth/token/", body, content_type="application/json")
    assert response.status_code == 200, response.content
    return ApiClient(client, response.json()["access"])


@pytest.fixture
def admin_principal(nexus_world):
    from apps.core.principal import Principal

    home = nexus_world["tenants"]["acme"]
    return Principal(
        kind="user", actor="user:platform-admin", tenant_id=home.pk, tenant_slug="acme", role="owner", is_platform_admin=True
    )


@pytest.fixture
def key_actor(nexus_world):
    """key_actor(tenant, role) -> the actor string of that nexus_world key (`apikey:key_…`)."""
    from apps.accounts.models import ApiKey

    def actor(tenant: str = "acme", role: str = "owner") -> str:
        prefix = nexus_world["keys"][(tenant, role)].split("_")[1]
        return f"apikey:{ApiKey.objects.get(prefix=prefix).id}"

    return actor


def only(rows, **expected):
    """The one row of `rows`, checked field by field."""
    assert len(rows) == 1, [(r.action, r.target, r.actor) for r in rows]
    row = rows[0]
    assert {name: getattr(row, name) for name in expected} == expected
    return row
