"""WebSocket consumers against the real Redis channel layer: auth, close codes, live events, replay with `since`.

The communicator runs under async_to_sync from this (sync) test, so the consumers' database work runs back
on this thread, inside the test's transaction; `close_old_connections` is disabled for the same reason.
"""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from apps.realtime.routing import websocket_application

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_test_connection(monkeypatch):
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


def _connect(path: str, *, key: str | None = None, header: bool = True):
    headers = [(b"authorization", f"Bearer {key}".encode())] if key and header else []
    if key and not header:
        path += ("&" if "?" in path else "?") + f"token={key}"
    return WebsocketCommunicator(websocket_application(), path, headers=headers)


async def _open(communicator):
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _closed_with(communicator) -> int:
    message = await communicator.receive_output(timeout=3)
    assert message["type"] == "websocket.close"
    return message["code"]


def test_refusals_carry_clear_close_codes(api, deployed, nexus_world):
    session_id = api().post("/api/v1/sessions/", {}).json()["id"]
    keys = nexus_world["keys"]

    async def scenario():
        results = []
        for path, key in [
            (f"/ws/sessions/{session_id}/", None),
            (f"/ws/sessions/{session_id}/", "nxk_not_a_key"),
            (f"/ws/sessions/{session_id}/", keys[("globex", "owner")]),
            ("/ws/executions/run_00000000000000000000000000/", keys[("acme", "viewer")]),
            (f"/ws/sessions/{session_id}/?since=bogus", keys[("acme", "viewer")]),
        ]:
            communicator = await _open(_connect(path, key=key))
            results.append(await _closed_with(communicator))
            await communicator.disconnect()
        return results

    assert async_to_sync(scenario)() == [4401, 4401, 4404, 4404, 4400]


def test_session_stream_live_then_replay_since(api, deployed, nexus_world, django_capture_on_commit_callbacks):
    owner = api()
    session_id = owner.post("/api/v1/sessions/", {}).json()["id"]
    viewer_key = nexus_world["keys"][("acme", "viewer")]

    def execute(name: str) -> str:
        body = {"inputs": {"name": name}, "session": session_id}
        with django_capture_on_commit_callbacks(execute=True):
            return owner.post("/api/v1/workflows/hello-world/execute/", body).json()["execution_id"]

    async def scenario():
        from asgiref.sync import sync_to_async

        from apps.events.fanout import fanout_flush

        live = await _open(_connect(f"/ws/sessions/{session_id}/", key=viewer_key, header=False))
        first = await sync_to_async(execute)("one")
        await sync_to_async(fanout_flush)()
        event = json.loads(await live.receive_from(timeout=3))
        assert (event["type"], event["source"], event["data"]["execution_id"]) == ("execution.completed", "api", first)
        await live.disconnect()
        missed = [await sync_to_async(execute)(name) for name in ("two", "three")]
        await sync_to_async(fanout_flush)()
        again = await _open(_connect(f"/ws/sessions/{session_id}/?since={event['id']}", key=viewer_key))
        replayed = [json.loads(await again.receive_from(timeout=3)) for _ in missed]
        assert [e["data"]["execution_id"] for e in replayed] == missed
        later = await sync_to_async(execute)("four")
        await sync_to_async(fanout_flush)()
        assert json.loads(await again.receive_from(timeout=3))["data"]["execution_id"] == later
        assert await again.receive_nothing(timeout=0.3)  # the replayed events were not sent twice
        await again.disconnect()

    async_to_sync(scenario)()


def test_execution_and_tenant_streams(api, deployed, nexus_world, django_capture_on_commit_callbacks):
    owner = api()
    run_id = owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "x"}}).json()["execution_id"]
    key = nexus_world["keys"][("acme", "viewer")]

    async def scenario():
        from asgiref.sync import sync_to_async

        from apps.events.fanout import fanout_flush
        from apps.events.presence import presence_cache_clear

        tenant = await _open(_connect("/ws/tenant/", key=key))
        watcher = await _open(_connect(f"/ws/executions/{run_id}/", key=key))
        await tenant.receive_nothing(timeout=0.3)  # the hub set the presence flag when the sockets joined
        presence_cache_clear()

        def execute() -> str:
            with django_capture_on_commit_callbacks(execute=True):
                return owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "y"}}).json()["execution_id"]

        other = await sync_to_async(execute)()
        await sync_to_async(fanout_flush)()
        event = json.loads(await tenant.receive_from(timeout=3))
        assert (event["type"], event["data"]["execution_id"], event["session"]) == ("execution.completed", other, None)
        assert await watcher.receive_nothing(timeout=0.3)  # another run's events are not this run's
        await tenant.disconnect()
        await watcher.disconnect()

    async_to_sync(scenario)()


def _publish_in(tenant, events: list[dict], capture) -> list[str]:
    """Publish events in the tenant's schema, committed (on_commit run), as a service would; their ids."""
    from django.db import connection

    from apps.events.services import publish

    connection.set_tenant(tenant)
    try:
        with capture(execute=True):
            return [publish(**event)["id"] for event in events]
    finally:
        connection.set_schema_to_public()


def test_session_events_reach_every_socket_in_publish_order(api, nexus_world, django_capture_on_commit_callbacks):
    session_id = api().post("/api/v1/sessions/", {}).json()["id"]
    other_session = api().post("/api/v1/sessions/", {}).json()["id"]
    key = nexus_world["keys"][("acme", "viewer")]
    acme = nexus_world["tenants"]["acme"]

    async def scenario():
        from asgiref.sync import sync_to_async

        from apps.events.fanout import fanout_flush

        sockets = [await _open(_connect(f"/ws/sessions/{session_id}/", key=key)) for _ in range(3)]
        elsewhere = await _open(_connect(f"/ws/sessions/{other_session}/", key=key))
        events = [{"type": "report.ready", "source": "worker", "data": {"n": n}, "session_id": session_id} for n in range(40)]
        events.insert(20, {"type": "report.ready", "source": "worker", "data": {"n": -1}, "session_id": other_session})
        published = await sync_to_async(_publish_in)(acme, events, django_capture_on_commit_callbacks)
        await sync_to_async(fanout_flush)()
        expected = [event_id for event_id, event in zip(published, events, strict=True) if event["session_id"] == session_id]
        for socket in sockets:
            received = [json.loads(await socket.receive_from(timeout=3)) for _ in expected]
            assert [e["id"] for e in received] == expected
            assert [e["data"]["n"] for e in received] == list(range(40))
            assert await socket.receive_nothing(timeout=0.2)
        assert json.loads(await elsewhere.receive_from(timeout=3))["data"] == {"n": -1}
        assert await elsewhere.receive_nothing(timeout=0.2)
        for socket in [*sockets, elsewhere]:
            await socket.disconnect()

    async_to_sync(scenario)()


def test_replay_pages_through_a_long_absence(api, nexus_world, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr("apps.realtime.consumers.REPLAY_PAGE", 2)
    session_id = api().post("/api/v1/sessions/", {}).json()["id"]
    acme = nexus_world["tenants"]["acme"]
    events = [{"type": "report.ready", "source": "cli", "data": {"n": n}, "session_id": session_id} for n in range(6)]
    published = _publish_in(acme, events, django_capture_on_commit_callbacks)
    key = nexus_world["keys"][("acme", "viewer")]

    async def scenario():
        again = await _open(_connect(f"/ws/sessions/{session_id}/?since={published[0]}", key=key))
        replayed = [json.loads(await again.receive_from(timeout=3))["id"] for _ in published[1:]]
        assert await again.receive_nothing(timeout=0.3)
        await again.disconnect()
        return replayed

    assert async_to_sync(scenario)() == published[1:]


def test_a_lost_redis_subscription_closes_sockets_so_clients_replay(api, nexus_world, django_capture_on_commit_callbacks):
    """Pub/sub is at-most-once: when the hub's connection to Redis dies, its sockets are closed with 4503 (not
    left open and silently missing events), and a reconnect with `since` gets what was published meanwhile."""
    import redis
    from django.conf import settings

    session_id = api().post("/api/v1/sessions/", {}).json()["id"]
    acme = nexus_world["tenants"]["acme"]
    key = nexus_world["keys"][("acme", "viewer")]
    event = {"type": "report.ready", "source": "worker", "session_id": session_id}

    async def scenario():
        from asgiref.sync import sync_to_async

        from apps.events.fanout import fanout_flush
        from apps.realtime.hub import hub

        live = await _open(_connect(f"/ws/sessions/{session_id}/", key=key))
        [first] = await sync_to_async(_publish_in)(acme, [{**event, "data": {"n": 1}}], django_capture_on_commit_callbacks)
        await sync_to_async(fanout_flush)()
        assert json.loads(await live.receive_from(timeout=3))["id"] == first
        host, port = hub()._pubsub.connection._writer.get_extra_info("sockname")[:2]
        assert redis.Redis.from_url(settings.REDIS_URL).client_kill(f"{host}:{port}")  # this hub's connection only
        assert await _closed_with(live) == 4503
        await live.disconnect()
        [missed] = await sync_to_async(_publish_in)(acme, [{**event, "data": {"n": 2}}], django_capture_on_commit_callbacks)
        await sync_to_async(fanout_flush)()
        again = await _open(_connect(f"/ws/sessions/{session_id}/?since={first}", key=key))
        assert json.loads(await again.receive_from(timeout=3))["id"] == missed
        [later] = await sync_to_async(_publish_in)(acme, [{**event, "data": {"n": 3}}], django_capture_on_commit_callbacks)
        await sync_to_async(fanout_flush)()
        assert json.loads(await again.receive_from(timeout=3))["id"] == later
        await again.disconnect()

    async_to_sync(scenario)()
