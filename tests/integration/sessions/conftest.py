"""Session test fixtures: a deployed hello-world, clean per-process caches, the real Redis event channels."""

import json

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
def listen(settings):
    """listen(tenant, session=None) -> receive(): the events published on the tenant's Redis channel from now on
    (the channel every daphne hub subscribes to), only one session's if `session` is given."""
    import redis

    from apps.events.fanout import events_channel, fanout_flush

    subscriptions = []

    def subscribe(tenant: str, session: str | None = None):
        # Events published before subscribing may still be on their way (the fan-out thread sends them
        # after commit); let them go first, so the subscriber sees only what comes after.
        assert fanout_flush(5.0)
        pubsub = redis.Redis.from_url(settings.REDIS_URL).pubsub()
        subscriptions.append(pubsub)
        from apps.tenants.models import Tenant

        pubsub.subscribe(events_channel(Tenant.objects.get(slug=tenant).pk))
        confirmed = pubsub.get_message(timeout=3)
        assert confirmed is not None and confirmed["type"] == "subscribe"

        def receive_all() -> list[dict]:
            assert fanout_flush(5.0)
            events = []
            while (message := pubsub.get_message(timeout=0.3)) is not None:
                events.append(json.loads(message["data"]))
            return [event for event in events if session is None or event["session"] == session]

        return receive_all

    yield subscribe
    for pubsub in subscriptions:
        pubsub.close()
