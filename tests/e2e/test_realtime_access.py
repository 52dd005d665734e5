"""WebSockets through HAProxy → daphne end when their credential does: `nexus apikey revoke`, `nexus member remove`,
`nexus tenant suspend|delete` close them within moments; sockets per credential are capped; tenants are routed by
id, so a slug reused after a deletion is a new tenant's channel."""

import asyncio
import json
import subprocess
import time

import pytest
import redis
import websockets

from tests.e2e.conftest import NEXUS, REPO, http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _ws(nexus, path: str) -> str:
    return nexus.base_url.replace("http://", "ws://") + path


async def _closed(ws, timeout: float) -> tuple[int, list[dict]]:
    """Read until the server closes the socket: (its close code, the events received meanwhile). Daphne sends
    no close reason, so the code is what a client gets."""
    events = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            events.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=max(0.01, deadline - time.monotonic()))))
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code, events


def _run_cli(nexus, *args: str) -> float:
    """Run a `nexus` command; the moment it returned (time.monotonic())."""
    result = nexus.cli(*args)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return time.monotonic()


def test_revoking_a_key_on_the_cli_closes_its_socket_and_nothing_follows(nexus):
    owner = nexus.credentials["api_key"]
    key = nexus.cli_json("apikey", "create", "--role", "viewer", "--name", "ws-revoked")
    api = f"{nexus.base_url}/api/v1"

    async def scenario():
        headers = {"Authorization": f"Bearer {key['key']}"}
        async with (
            websockets.connect(_ws(nexus, "/ws/tenant/"), additional_headers=headers) as ws,
            websockets.connect(_ws(nexus, "/ws/tenant/"), additional_headers={"Authorization": f"Bearer {owner}"}) as kept,
        ):
            started = time.monotonic()
            revoked_at = await asyncio.to_thread(_run_cli, nexus, "apikey", "revoke", key["id"])
            # Right after the revocation: an event the revoked socket must never see.
            status, _ = http("POST", f"{api}/workflows/", {"slug": "after-revoke", "template": "basic"}, key=owner)
            assert status == 201
            code, events = await _closed(ws, timeout=5)
            closed_at = time.monotonic()
            assert code == 4401
            assert closed_at - revoked_at < 2.0, f"closed {closed_at - revoked_at:.2f} s after the CLI returned"
            assert closed_at - started < 2.0 + (revoked_at - started)
            assert [e for e in events if e["type"] == "workflow.created"] == []
            created = json.loads(await asyncio.wait_for(kept.recv(), timeout=5))
            assert (created["type"], created["data"]["slug"]) == ("workflow.created", "after-revoke")
        # and the key opens nothing any more
        async with websockets.connect(_ws(nexus, f"/ws/tenant/?token={key['key']}")) as again:
            code, _ = await _closed(again, timeout=5)
            assert code == 4401

    asyncio.run(scenario())


def test_removing_a_member_closes_their_login_socket(nexus):
    password = "ws-member-password-1"
    created = subprocess.run(
        [NEXUS, "user", "create", "ws-member", "--password-stdin"],
        input=password + "\n",
        env=nexus.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    _run_cli(nexus, "member", "add", "ws-member", "--role", "viewer")
    status, pair = http(
        "POST", f"{nexus.base_url}/api/v1/auth/token/", {"username": "ws-member", "password": password, "tenant": "default"}
    )
    assert status == 200, pair

    async def scenario():
        async with websockets.connect(_ws(nexus, f"/ws/tenant/?token={pair['access']}")) as ws:
            removed_at = await asyncio.to_thread(_run_cli, nexus, "member", "remove", "ws-member")
            code, _ = await _closed(ws, timeout=5)
            assert code == 4403
            assert time.monotonic() - removed_at < 2.0

    asyncio.run(scenario())


def test_suspending_a_tenant_closes_its_sockets(nexus):
    assert nexus.cli_json("tenant", "create", "ws-suspended")["slug"] == "ws-suspended"
    key = nexus.cli_json("apikey", "create", "--tenant", "ws-suspended", "--role", "owner")["key"]

    async def scenario():
        async with websockets.connect(_ws(nexus, "/ws/tenant/"), additional_headers={"Authorization": f"Bearer {key}"}) as ws:
            suspended_at = await asyncio.to_thread(_run_cli, nexus, "tenant", "suspend", "ws-suspended")
            code, _ = await _closed(ws, timeout=5)
            assert code == 4403
            assert time.monotonic() - suspended_at < 2.0

    asyncio.run(scenario())


def test_sockets_per_credential_are_capped(nexus):
    """NEXUS_WS_MAX_PER_CREDENTIAL (50 by default): the 51st socket of one key is refused with 4429."""
    key = nexus.cli_json("apikey", "create", "--role", "viewer", "--name", "ws-capped")["key"]
    other = nexus.credentials["api_key"]

    async def scenario():
        headers = {"Authorization": f"Bearer {key}"}
        sockets = [await websockets.connect(_ws(nexus, "/ws/tenant/"), additional_headers=headers) for _ in range(50)]
        try:
            over = await websockets.connect(_ws(nexus, "/ws/tenant/"), additional_headers=headers)
            code, _ = await _closed(over, timeout=5)
            assert code == 4429
            async with websockets.connect(
                _ws(nexus, "/ws/tenant/"), additional_headers={"Authorization": f"Bearer {other}"}
            ) as ws:
                await ws.ping()  # another credential is not counted
            await sockets.pop().close()
            for _ in range(50):  # the freed slot is given back to Redis right after the close
                again = await websockets.connect(_ws(nexus, "/ws/tenant/"), additional_headers=headers)
                try:
                    await asyncio.wait_for(again.recv(), timeout=0.3)
                except TimeoutError:
                    sockets.append(again)  # open and quiet: it got the slot
                    break
                except websockets.ConnectionClosed:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the closed socket's slot was never freed")
        finally:
            await asyncio.gather(*(s.close() for s in sockets))

    asyncio.run(scenario())


def test_a_reused_slug_is_another_tenants_channel(nexus):
    """Deleting a tenant closes its sockets; a new tenant under the same slug publishes on its own channel (by
    id), and the old tenant's credentials open nothing."""
    events = redis.Redis.from_url(nexus.redis_url).pubsub()
    events.psubscribe(f"nexus:{nexus.redis_url.rsplit('/', 1)[1]}:events:*")
    assert events.get_message(timeout=3)["type"] == "psubscribe"

    def channel_of(slug: str, key: str) -> str:
        status, _ = http(
            "POST", f"{nexus.base_url}/api/v1/workflows/", {"slug": f"wf-{time.monotonic_ns()}", "template": "basic"}, key=key
        )
        assert status == 201
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = events.get_message(timeout=0.5)
            if message and message["type"] == "pmessage" and json.loads(message["data"])["tenant"] == slug:
                return message["channel"].decode()
        raise AssertionError(f"no event of {slug} seen")

    assert nexus.cli_json("tenant", "create", "ws-reborn")["slug"] == "ws-reborn"
    old_key = nexus.cli_json("apikey", "create", "--tenant", "ws-reborn", "--role", "owner")["key"]
    old_channel = channel_of("ws-reborn", old_key)

    async def scenario():
        headers = {"Authorization": f"Bearer {old_key}"}
        async with websockets.connect(_ws(nexus, "/ws/tenant/"), additional_headers=headers) as old_socket:
            deleted_at = await asyncio.to_thread(_run_cli, nexus, "tenant", "delete", "ws-reborn", "--confirm", "ws-reborn")
            code, _ = await _closed(old_socket, timeout=5)
            assert code == 4403
            assert time.monotonic() - deleted_at < 2.0
        assert nexus.cli_json("tenant", "create", "ws-reborn")["slug"] == "ws-reborn"
        new_key = nexus.cli_json("apikey", "create", "--tenant", "ws-reborn", "--role", "owner")["key"]
        async with websockets.connect(_ws(nexus, f"/ws/tenant/?token={old_key}")) as stale:
            code, _ = await _closed(stale, timeout=5)
            assert code == 4401
        async with websockets.connect(
            _ws(nexus, "/ws/tenant/"), additional_headers={"Authorization": f"Bearer {new_key}"}
        ) as new_socket:
            new_channel = await asyncio.to_thread(channel_of, "ws-reborn", new_key)
            assert new_channel != old_channel
            event = json.loads(await asyncio.wait_for(new_socket.recv(), timeout=5))
            assert (event["type"], event["tenant"]) == ("workflow.created", "ws-reborn")

    try:
        asyncio.run(scenario())
    finally:
        events.close()
