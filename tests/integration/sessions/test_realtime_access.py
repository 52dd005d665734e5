"""WebSockets live only as long as their credential: access notices close them at once, the periodic re-check
catches the rest, sockets per credential holder are capped, and a socket hears only the events it may read.

Against the real Redis (pub/sub, the cap's sorted sets) and PostgreSQL; the communicator runs under async_to_sync
from these (sync) tests, so the consumers' database work runs on this thread, inside the test's transaction.
"""

import json
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection

from apps.core.principal import Principal
from apps.realtime.routing import websocket_application

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_test_connection(monkeypatch):
    from apps.events.fanout import fanout_flush

    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)
    assert fanout_flush(5.0)  # earlier tests' events are out before these sockets open


def _system(tenant) -> Principal:
    return Principal(
        kind="system", actor="system:test", tenant_id=tenant.pk, tenant_slug=tenant.slug, role="owner", is_platform_admin=True
    )


def _new_key(tenant, role: str = "viewer") -> tuple[str, str]:
    from apps.accounts.services import apikey_create

    connection.set_schema_to_public()
    key, raw = apikey_create(principal=_system(tenant), tenant=tenant, role=role, name="socket")
    return key.id, raw


async def _open(path: str, credential: str):
    communicator = WebsocketCommunicator(
        websocket_application(), path, headers=[(b"authorization", f"Bearer {credential}".encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _closed_with(communicator, timeout: float = 3) -> tuple[int, str]:
    message = await communicator.receive_output(timeout=timeout)
    assert message["type"] == "websocket.close", message
    return message["code"], message.get("reason", "")


def _jwt(user, tenant, role: str, *, lifetime_s: float | None = None) -> str:
    """A login access token (as POST /api/v1/auth/token/ issues), optionally expiring sooner."""
    from datetime import timedelta

    from rest_framework_simplejwt.tokens import AccessToken

    from apps.accounts.tokens import token_pair_issue

    access = token_pair_issue(user=user, tenant=tenant, role=role).access
    if lifetime_s is None:
        return access
    token = AccessToken(access)
    token.set_exp(lifetime=timedelta(seconds=lifetime_s))
    return str(token)


def _publish_in(tenant, types: list[str], capture) -> list[str]:
    from apps.events.fanout import fanout_flush
    from apps.events.services import publish

    connection.set_tenant(tenant)
    try:
        with capture(execute=True):
            ids = [publish(type=t, source="api", data={})["id"] for t in types]
    finally:
        connection.set_schema_to_public()
    assert fanout_flush(5.0)
    return ids


def test_revoking_a_key_closes_its_sockets_at_once_and_sends_nothing_after(nexus_world, django_capture_on_commit_callbacks):
    from apps.accounts.services import apikey_revoke

    acme = nexus_world["tenants"]["acme"]
    key_id, raw = _new_key(acme)
    other = nexus_world["keys"][("acme", "viewer")]

    def revoke():
        with django_capture_on_commit_callbacks(execute=True):  # the notice goes out once the revocation commits
            apikey_revoke(principal=_system(acme), tenant=acme, key_id=key_id)

    async def scenario():
        revoked = [await _open("/ws/tenant/", raw) for _ in range(2)]
        session_socket = await _open(f"/ws/executions/{'run_' + '0' * 26}/", raw)
        kept = await _open("/ws/tenant/", other)
        await sync_to_async(revoke)()
        for socket in revoked:
            assert await _closed_with(socket, timeout=2) == (4401, "apikey_revoked")
        await sync_to_async(_publish_in)(acme, ["workflow.created"], django_capture_on_commit_callbacks)
        assert json.loads(await kept.receive_from(timeout=3))["type"] == "workflow.created"
        for socket in revoked:
            assert await socket.receive_nothing(timeout=0.3)  # closed: not a frame more
            await socket.disconnect()
        await session_socket.disconnect()
        await kept.disconnect()

    async_to_sync(scenario)()


def test_removing_a_member_closes_their_login_token_sockets(nexus_world, make_user, django_capture_on_commit_callbacks):
    from apps.accounts.services import member_remove

    acme = nexus_world["tenants"]["acme"]
    ann = _jwt(make_user("ws-ann", acme="viewer"), acme, "viewer")
    bob = _jwt(make_user("ws-bob", acme="viewer"), acme, "viewer")
    connection.set_schema_to_public()

    def remove():
        with django_capture_on_commit_callbacks(execute=True):
            member_remove(principal=_system(acme), tenant=acme, username="ws-ann")

    async def scenario():
        removed, kept = await _open("/ws/tenant/", ann), await _open("/ws/tenant/", bob)
        await sync_to_async(remove)()
        assert await _closed_with(removed, timeout=2) == (4403, "member_removed")
        assert await kept.receive_nothing(timeout=0.3)
        await removed.disconnect()
        await kept.disconnect()

    async_to_sync(scenario)()


def test_suspending_a_tenant_closes_its_sockets_only(nexus_world, django_capture_on_commit_callbacks):
    from apps.tenants.services import tenant_suspend

    acme, globex = nexus_world["tenants"]["acme"], nexus_world["tenants"]["globex"]

    def suspend():
        with django_capture_on_commit_callbacks(execute=True):
            tenant_suspend(principal=_system(acme), slug="acme")

    async def scenario():
        closing = await _open("/ws/tenant/", nexus_world["keys"][("acme", "owner")])
        elsewhere = await _open("/ws/tenant/", nexus_world["keys"][("globex", "owner")])
        await sync_to_async(suspend)()
        assert await _closed_with(closing, timeout=2) == (4403, "tenant_suspended")
        await sync_to_async(_publish_in)(globex, ["workflow.created"], django_capture_on_commit_callbacks)
        assert json.loads(await elsewhere.receive_from(timeout=3))["tenant"] == "globex"
        await closing.disconnect()
        await elsewhere.disconnect()

    async_to_sync(scenario)()


def test_the_periodic_recheck_closes_what_no_notice_announced(nexus_world, django_capture_on_commit_callbacks):
    """A notice lost on the way (or a change that sends none): the re-check resolves every socket's credential
    again through the same selector: 4401 for a key that no longer resolves, 4403 for narrowed scopes."""
    from django.utils import timezone

    from apps.accounts.models import ApiKey
    from apps.accounts.selectors import key_cache
    from apps.integrations.models import Application
    from apps.integrations.services import app_register
    from apps.realtime.hub import hub

    acme = nexus_world["tenants"]["acme"]
    key_id, raw = _new_key(acme)
    app, secrets = app_register(principal=_system(acme), tenant=acme, name="reader", scopes=["executions:read"])
    kept = nexus_world["keys"][("acme", "viewer")]

    def change_behind_the_hubs_back():
        ApiKey.objects.filter(id=key_id).update(revoked_at=timezone.now())
        Application.objects.filter(id=app.id).update(scopes=["workflows:read"])
        key_cache.clear()

    async def scenario():
        revoked, narrowed, untouched = (
            await _open("/ws/tenant/", raw),
            await _open("/ws/tenant/", secrets["api_key"]),
            await _open("/ws/tenant/", kept),
        )
        assert await hub().recheck() == 3  # nothing changed yet: every socket stays
        assert await revoked.receive_nothing(timeout=0.2) and await narrowed.receive_nothing(timeout=0.1)
        await sync_to_async(change_behind_the_hubs_back)()
        assert await revoked.receive_nothing(timeout=0.2)  # no notice was sent
        assert await hub().recheck() == 3
        assert await _closed_with(revoked) == (4401, "invalid_credentials")
        assert await _closed_with(narrowed) == (4403, "permission_denied")
        assert await untouched.receive_nothing(timeout=0.2)
        for socket in (revoked, narrowed, untouched):
            await socket.disconnect()

    async_to_sync(scenario)()


def test_the_recheck_runs_on_its_own_every_interval(nexus_world, settings, make_user):
    """Every NEXUS_WS_RECHECK_S, with nobody asking: a key revoked without a notice, a login token that expired."""
    from django.utils import timezone

    from apps.accounts.models import ApiKey
    from apps.accounts.selectors import key_cache

    settings.NEXUS_WS_RECHECK_S = 0.2
    acme = nexus_world["tenants"]["acme"]
    key_id, raw = _new_key(acme)
    expiring = _jwt(make_user("ws-eve", acme="viewer"), acme, "viewer", lifetime_s=3)
    issued = time.monotonic()
    connection.set_schema_to_public()

    def revoke_silently():
        ApiKey.objects.filter(id=key_id).update(revoked_at=timezone.now())
        key_cache.clear()

    async def scenario():
        socket, login_socket = await _open("/ws/tenant/", raw), await _open("/ws/tenant/", expiring)
        await sync_to_async(revoke_silently)()
        assert await _closed_with(socket, timeout=2) == (4401, "invalid_credentials")
        code, reason = await _closed_with(login_socket, timeout=3)
        # After its expiry (a whole second in the token: 2 to 3 s from now), within a re-check or two.
        assert (code, reason) == (4401, "invalid_credentials") and 1.9 < time.monotonic() - issued < 3.8
        await socket.disconnect()
        await login_socket.disconnect()

    async_to_sync(scenario)()


def test_narrowing_an_applications_scopes_rechecks_its_sockets_at_once(nexus_world, django_capture_on_commit_callbacks):
    from apps.integrations.services import app_register, app_update

    acme = nexus_world["tenants"]["acme"]
    app, secrets = app_register(
        principal=_system(acme), tenant=acme, name="shrinking", scopes=["executions:read", "workflows:read"]
    )

    def narrow(scopes: list[str]):
        with django_capture_on_commit_callbacks(execute=True):
            app_update(principal=_system(acme), tenant=acme, app_id=app.id, scopes=scopes)

    async def scenario():
        socket = await _open("/ws/tenant/", secrets["api_key"])
        await sync_to_async(narrow)(["executions:read"])  # still may stream: re-resolved, kept, narrower events
        assert await socket.receive_nothing(timeout=0.3)
        await sync_to_async(_publish_in)(acme, ["workflow.created", "execution.completed"], django_capture_on_commit_callbacks)
        assert json.loads(await socket.receive_from(timeout=3))["type"] == "execution.completed"
        await sync_to_async(narrow)(["workflows:read"])  # no longer reads executions: closed, without a re-check tick
        assert await _closed_with(socket, timeout=2) == (4403, "permission_denied")
        await socket.disconnect()

    async_to_sync(scenario)()


def test_a_socket_hears_only_the_events_its_principal_may_read(nexus_world, django_capture_on_commit_callbacks):
    from apps.integrations.services import app_register

    acme = nexus_world["tenants"]["acme"]
    app, secrets = app_register(principal=_system(acme), tenant=acme, name="runs-only", scopes=["executions:read"])
    types = ["member.added", "app.updated", "execution.completed", "workflow.created", "report.ready"]

    async def scenario():
        narrow = await _open("/ws/tenant/", secrets["api_key"])
        viewer = await _open("/ws/tenant/", nexus_world["keys"][("acme", "viewer")])
        published = await sync_to_async(_publish_in)(acme, types, django_capture_on_commit_callbacks)
        got_narrow = [json.loads(await narrow.receive_from(timeout=3))["type"] for _ in range(2)]
        assert got_narrow == ["execution.completed", "report.ready"]
        assert await narrow.receive_nothing(timeout=0.3)
        got_viewer = [json.loads(await viewer.receive_from(timeout=3))["type"] for _ in range(4)]
        assert got_viewer == ["member.added", "execution.completed", "workflow.created", "report.ready"]
        assert await viewer.receive_nothing(timeout=0.3)
        await narrow.disconnect()
        await viewer.disconnect()
        # The replay is filtered the same way.
        again = await _open(f"/ws/tenant/?since={published[0]}", secrets["api_key"])
        replayed = [json.loads(await again.receive_from(timeout=3))["type"] for _ in range(2)]
        assert replayed == ["execution.completed", "report.ready"]
        assert await again.receive_nothing(timeout=0.3)
        await again.disconnect()

    async_to_sync(scenario)()


def test_sockets_per_credential_holder_are_capped_across_processes(nexus_world, settings):
    import redis

    from apps.realtime.hub import _slot_key

    settings.NEXUS_WS_MAX_PER_CREDENTIAL = 2
    acme = nexus_world["tenants"]["acme"]
    key_id, raw = _new_key(acme)
    holder = _slot_key(f"{acme.pk}:apikey:{key_id}")
    store = redis.Redis.from_url(settings.REDIS_URL)

    async def scenario():
        import asyncio

        first, second = await _open("/ws/tenant/", raw), await _open("/ws/tenant/", raw)
        assert store.zcard(holder) == 2  # one slot per socket, in Redis: every daphne process counts the same
        third = await _open("/ws/tenant/", raw)
        assert await _closed_with(third) == (4429, "too_many_connections")
        await third.disconnect()
        other = await _open("/ws/tenant/", nexus_world["keys"][("acme", "viewer")])  # another holder: not counted
        assert await other.receive_nothing(timeout=0.2)
        await first.disconnect()
        for _ in range(50):  # the slot is freed by a task after the socket leaves
            if store.zcard(holder) == 1:
                break
            await asyncio.sleep(0.02)
        again = await _open("/ws/tenant/", raw)
        assert await again.receive_nothing(timeout=0.2)
        assert store.zcard(holder) == 2
        await second.disconnect()
        for _ in range(50):
            if store.zcard(holder) == 1:
                break
            await asyncio.sleep(0.02)
        # Another process's live socket counts; a slot whose process crashed (no renewal: its lease ended) does not.
        store.zadd(holder, {"crashed-process-socket": 0})
        fourth = await _open("/ws/tenant/", raw)
        assert await fourth.receive_nothing(timeout=0.2)
        assert store.zcard(holder) == 2 and store.zscore(holder, "crashed-process-socket") is None
        await fourth.disconnect()
        for _ in range(50):
            if store.zcard(holder) == 1:
                break
            await asyncio.sleep(0.02)
        store.zadd(holder, {"other-process-socket": 4e9})
        refused = await _open("/ws/tenant/", raw)
        assert await _closed_with(refused) == (4429, "too_many_connections")
        await refused.disconnect()
        for socket in (other, again):
            await socket.disconnect()

    async_to_sync(scenario)()
    store.delete(holder)


def test_a_refused_socket_is_an_audited_denial_at_the_handshake_and_at_a_recheck(nexus_world, django_capture_on_commit_callbacks):
    from apps.audit.models import AuditEvent
    from apps.integrations.services import app_register, app_update

    acme = nexus_world["tenants"]["acme"]
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    _, narrow_secrets = app_register(principal=_system(acme), tenant=acme, name="no-runs", scopes=["workflows:read"])
    app, secrets = app_register(principal=_system(acme), tenant=acme, name="narrowed", scopes=["executions:read"])

    def narrow():
        with django_capture_on_commit_callbacks(execute=True):
            app_update(principal=_system(acme), tenant=acme, app_id=app.id, scopes=["workflows:read"])

    async def scenario():
        refused = await _open("/ws/tenant/", narrow_secrets["api_key"])
        assert await _closed_with(refused) == (4403, "permission_denied")
        await refused.disconnect()
        socket = await _open("/ws/tenant/", secrets["api_key"])
        assert await socket.receive_nothing(timeout=0.3)
        await sync_to_async(narrow)()
        assert await _closed_with(socket, timeout=2) == (4403, "permission_denied")
        await socket.disconnect()

    async_to_sync(scenario)()
    denied = AuditEvent.objects.filter(id__gt=before, action="access.denied").order_by("id")
    assert [(row.tenant_id, row.target, row.details["reason"]) for row in denied] == [
        (acme.pk, "execution.read", "the application's scopes may not execution read (it needs scope executions:read)"),
        (acme.pk, "execution.read", "the application's scopes may not execution read (it needs scope executions:read)"),
    ]
