"""The Django admin at /admin/: failed logins throttled like the API login (per username and per client address),
logins and edits audited, and no other site may frame it."""

import itertools
import json
import uuid

import pytest

from apps.audit.models import AuditEvent
from apps.ops.redis_client import redis_client

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-password-1"
_addresses = itertools.count(1)


def _ip() -> str:
    # A client address no other request of this run uses, forwarded by the trusted proxy (the peer is 127.0.0.1).
    n = next(_addresses)
    return f"10.{200 + n // 62500 % 50}.{n // 250 % 250}.{n % 250 + 1}"


@pytest.fixture
def throttle(settings):
    """The production defaults (the test settings lift them out of reach): 10 failures per username, 50 per client,
    counted under a Redis key prefix of this test's own (Redis is not rolled back between tests or runs)."""
    prefix = f"nexus:rl-test:{uuid.uuid4().hex[:12]}:"
    settings.NEXUS_RATE_LIMIT_PREFIX = prefix
    settings.NEXUS_LOGIN_THROTTLE_ACCOUNT = 10
    settings.NEXUS_LOGIN_THROTTLE_IP = 50
    settings.NEXUS_LOGIN_THROTTLE_PERIOD_S = 300.0
    yield
    client = redis_client()
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)


@pytest.fixture
def staff(make_user):
    name = f"staff-{uuid.uuid4().hex[:8]}"  # counters live in Redis, which no test rolls back
    return make_user(name, PASSWORD, platform_admin=True)


def _login(client, username: str, password: str, ip: str):
    return client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password, "next": "/admin/"}, HTTP_X_FORWARDED_FOR=ip
    )


def test_admin_pages_refuse_to_be_framed(client):
    assert client.get("/admin/login/").headers["X-Frame-Options"] == "DENY"


def test_the_eleventh_failed_admin_login_for_a_username_is_refused_even_with_the_right_password(client, throttle, staff):
    statuses = [_login(client, staff.username, "wrong-password", _ip()).status_code for _ in range(10)]
    assert statuses == [200] * 10  # the login form again, with its error
    refused = _login(client, staff.username, PASSWORD, _ip())
    assert refused.status_code == 429
    assert refused.content.decode().startswith("too many failed login attempts: at most 10 per 5 minutes")
    assert int(refused.headers["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page


def test_failed_admin_logins_from_one_address_are_refused_whatever_the_username(client, throttle, settings, staff):
    settings.NEXUS_LOGIN_THROTTLE_IP = 3
    ip = _ip()
    assert [_login(client, f"nobody-{uuid.uuid4().hex[:6]}", "guess", ip).status_code for _ in range(3)] == [200] * 3
    assert _login(client, staff.username, PASSWORD, ip).status_code == 429
    assert "_auth_user_id" not in client.session


def test_admin_logins_are_audited_success_and_failure(client, throttle, staff):
    ip = _ip()
    assert _login(client, staff.username, "wrong-password", ip).status_code == 200
    succeeded = _login(client, staff.username, PASSWORD, ip)
    assert succeeded.status_code == 302 and client.session["_auth_user_id"] == str(staff.pk)
    rows = list(AuditEvent.objects.filter(ip=ip, channel="admin").order_by("seq"))
    assert [(row.action, row.outcome) for row in rows] == [("auth.login_failed", "denied"), ("auth.login_succeeded", "success")]
    failed, succeeded_row = rows
    # A failed login is recorded with the name the client typed (how: apps/accounts/services.py login_attempted).
    assert staff.username in f"{failed.actor} {failed.target} {json.dumps(failed.details)}"
    assert (succeeded_row.actor, succeeded_row.target) == (f"user:{staff.username}", f"user:{staff.username}")


def test_a_successful_admin_login_does_not_count_as_a_failure(client, throttle, settings, staff):
    settings.NEXUS_LOGIN_THROTTLE_ACCOUNT = 2
    for _ in range(3):
        assert _login(client, staff.username, PASSWORD, _ip()).status_code == 302
        client.logout()


def test_admin_edits_write_audit_rows(client, staff):
    from django.contrib.auth.models import Group

    client.force_login(staff)
    name = f"editors-{uuid.uuid4().hex[:6]}"
    assert client.post("/admin/auth/group/add/", {"name": name}).status_code == 302
    group = Group.objects.get(name=name)
    assert client.post(f"/admin/auth/group/{group.pk}/change/", {"name": name + "-2"}).status_code == 302
    assert client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Group.objects.filter(pk=group.pk).exists()
    rows = list(
        AuditEvent.objects.filter(target=f"auth.group:{group.pk}", channel="admin")
        .order_by("seq")
        .values_list("action", "actor", "actor_type", "outcome", "details")
    )
    actor = f"user:{staff.username}"
    assert rows == [
        (
            "admin_object.added",
            actor,
            "user",
            "success",
            {"model": "auth.group", "object_id": str(group.pk), "change": [{"added": {}}]},
        ),
        (
            "admin_object.changed",
            actor,
            "user",
            "success",
            {"model": "auth.group", "object_id": str(group.pk), "change": [{"changed": {"fields": ["Name"]}}]},
        ),
        ("admin_object.deleted", actor, "user", "success", {"model": "auth.group", "object_id": str(group.pk)}),
    ]
