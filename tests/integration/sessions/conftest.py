"""Session test fixtures: a deployed hello-world, clean per-process caches, the real Redis channel layer."""

import pytest


@pytest.fixture(autouse=True)
def _clean_event_state():
    """No tenant starts with live subscribers; the CLI's declared origin and binding caches end with the test."""
    from apps.events.origin import _current
    from apps.events.presence import _redis, presence_cache_clear
    from apps.nexus_sessions.services import bind_cache

    for slug in ("acme", "globex"):
        _redis().delete(f"nexus:subscribers:{slug}")
    presence_cache_clear()
    bind_cache.clear()
    token = _current.set(_current.get())
    yield
    _current.reset(token)
    presence_cache_clear()
    bind_cache.clear()


@pytest.fixture
def deployed(api):
    owner = api()
    assert owner.post("/api/v1/workflows/", {"slug": "hello-world", "template": "basic"}).status_code == 201
    assert owner.post("/api/v1/workflows/hello-world/deploy/", {}).json()["status"] == "deployed"


@pytest.fixture
def listen():
    """listen(group) -> receive(): a channel on the real Redis layer subscribed to `group`."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()

    def subscribe(group: str):
        from apps.events.fanout import fanout_flush

        # Events published before subscribing may still be on their way (the fan-out thread sends them
        # after commit); let them go first, so the subscriber sees only what comes after.
        assert fanout_flush(5.0)
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(group, channel)

        def receive_all() -> list[dict]:
            from apps.events.fanout import fanout_flush

            assert fanout_flush(5.0)
            events = []

            async def drain():
                import asyncio

                while True:
                    try:
                        message = await asyncio.wait_for(layer.receive(channel), timeout=0.3)
                    except TimeoutError:
                        return
                    events.append(message["event"])

            async_to_sync(drain)()
            return events

        return receive_all

    return subscribe
