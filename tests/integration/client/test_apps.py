"""The Python client's API applications against a live server: register, rotate, revoke, OAuth2, deliveries, limits."""

import uuid

import pytest
from nexus_client import (
    Application,
    ApplicationCredentials,
    AuthenticationError,
    ClientCredentials,
    ConflictError,
    Delivery,
    NexusClient,
    PermissionDeniedError,
    RateLimitError,
    ValidationError,
)
from nexus_client.auth import OAuthTokenCache

HOOK_URL = "http://127.0.0.1:9/hooks"  # nothing listens: these tests never send, and no worker reads their queue


@pytest.fixture
def webhook_queue(settings):
    """Loopback webhook URLs allowed, and deliveries queued on a queue of the test's own, deleted afterwards."""
    from nexus_site.celery import app as celery_app

    settings.NEXUS_WEBHOOK_QUEUE = f"webhooks-sdk-{uuid.uuid4().hex[:12]}"
    settings.NEXUS_WEBHOOK_ALLOW_PRIVATE = True
    yield settings.NEXUS_WEBHOOK_QUEUE
    with celery_app.connection_for_write() as connection:
        connection.default_channel.client.delete(settings.NEXUS_WEBHOOK_QUEUE, f"_kombu.binding.{settings.NEXUS_WEBHOOK_QUEUE}")


@pytest.fixture
def listed_workflow(nexus, unique) -> str:
    """A workflow made by the owner, so a listing that comes back empty by mistake cannot pass."""
    return nexus().workflows.create(unique("sdk-listed"), template="basic").id


def workflow_ids(client) -> list[str]:
    return sorted(workflow.id for workflow in client.workflows.list())


@pytest.fixture
def register(nexus, unique):
    """register(**options) -> a new application of `sdk` (revoked after the test, so later runs send it nothing)."""
    owner = nexus()
    registered = []

    def make(**options) -> ApplicationCredentials:
        app = owner.apps.register(unique("sdk-app"), **options)
        registered.append(app.id)
        return app

    yield make
    for app_id in registered:
        owner.apps.revoke(app_id)


def test_register_show_update_rotate_and_revoke_an_application(nexus, register, webhook_queue, listed_workflow):
    owner = nexus()
    app = register(scopes=["workflows:read", "executions:read"], rate_limit_per_minute=500)
    assert isinstance(app, ApplicationCredentials)
    assert app.id.startswith("app_") and app.api_key.startswith("nxk_") and app.client_id and app.client_secret
    assert (app.tenant, app.role, app.scopes, app.rate_limit_per_minute) == (
        "sdk",
        "operator",
        ["executions:read", "workflows:read"],
        500,
    )
    assert app.webhook_secret is None and app.webhook_url is None and not app.revoked

    as_app = nexus(api_key=app.api_key)
    assert listed_workflow in workflow_ids(as_app) and workflow_ids(as_app) == workflow_ids(owner)
    with pytest.raises(PermissionDeniedError):
        as_app.sessions.create("outside its scopes")

    listed = owner.apps.list()
    assert app.id in [a.id for a in listed] and all(isinstance(a, Application) for a in listed)
    shown = owner.apps.get(app.id)
    assert (shown.name, shown.api_key_id, shown.client_id) == (app.name, app.api_key_id, app.client_id)
    assert app.api_key.startswith(f"nxk_{shown.api_key_prefix}_")

    hooked = owner.apps.update(app.id, webhook_url=HOOK_URL, webhook_events=["execution.completed"])
    assert hooked.webhook_url == HOOK_URL and hooked.webhook_events == ["execution.completed"]
    assert hooked.webhook_secret.startswith("whsec_")
    assert owner.apps.deliveries(app.id) == []

    rotated = owner.apps.rotate(app.id, ["api_key"])
    assert rotated.api_key.startswith("nxk_") and rotated.api_key != app.api_key
    assert rotated.client_secret is None and rotated.webhook_secret is None
    with pytest.raises(AuthenticationError):
        as_app.workflows.list()
    assert workflow_ids(nexus(api_key=rotated.api_key)) == workflow_ids(owner)

    revoked = owner.apps.revoke(app.id)
    assert revoked.revoked and revoked.revoked_at is not None
    with pytest.raises(AuthenticationError):
        nexus(api_key=rotated.api_key).workflows.list()


def test_a_refused_webhook_url_is_a_validation_error_naming_the_field(nexus, unique, settings):
    settings.NEXUS_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError) as refused:
        nexus().apps.register(unique("sdk-app"), webhook_url="http://127.0.0.1/hooks")
    assert (refused.value.status, refused.value.code) == (400, "invalid")
    assert list(refused.value.fields) == ["webhook_url"]
    assert "webhook_url" in str(refused.value)


def test_oauth2_client_credentials_fetch_one_token_and_use_it(nexus, register, live_server, monkeypatch, listed_workflow):
    fetched = []
    real_fetch = OAuthTokenCache._fetch
    monkeypatch.setattr(OAuthTokenCache, "_fetch", lambda self, http: fetched.append(1) or real_fetch(self, http))
    app = register()

    with NexusClient(live_server.url, oauth=ClientCredentials(app.client_id, app.client_secret)) as client:
        owner = nexus()
        assert listed_workflow in workflow_ids(client) and workflow_ids(client) == workflow_ids(owner)
        assert client.executions.list(limit=1).count == owner.executions.list(limit=1).count
        assert len(fetched) == 1

        nexus().apps.revoke(app.id)
        with pytest.raises(AuthenticationError) as revoked:  # the token is refused, and so is a new one
            client.workflows.list()
        assert revoked.value.code == "invalid_client" and len(fetched) == 2


def test_an_oauth2_token_can_be_narrowed_to_some_scopes(nexus, register, live_server, listed_workflow):
    app = register()
    narrow = ClientCredentials(app.client_id, app.client_secret, scope="workflows:read")
    with NexusClient(live_server.url, oauth=narrow) as client:
        assert listed_workflow in workflow_ids(client) and workflow_ids(client) == workflow_ids(nexus())
        with pytest.raises(PermissionDeniedError):
            client.sessions.create("not in the token's scopes")


def test_a_wrong_client_secret_is_an_authentication_error(register, live_server):
    app = register()
    with (
        NexusClient(live_server.url, oauth=ClientCredentials(app.client_id, "not-the-secret")) as client,
        pytest.raises(AuthenticationError) as refused,
    ):
        client.workflows.list()
    assert (refused.value.status, refused.value.code) == (401, "invalid_client")


def test_deliveries_list_show_and_redeliver(nexus, register, webhook_queue, sdk_world, django_db_blocker):
    from apps.core.ids import new_id
    from apps.integrations.models import WebhookDelivery

    owner = nexus()
    app = register(webhook_url=HOOK_URL)
    with django_db_blocker.unblock():
        failed = WebhookDelivery.objects.create(
            id=new_id("whd"),
            application_id=app.id,
            tenant_id=sdk_world["tenant"].pk,
            event_id=new_id("evt"),
            event_type="execution.completed",
            payload={"type": "execution.completed", "data": {"execution_id": "run_x"}},
            status="failed",
            attempts=8,
            response_code=500,
            last_error="receiver answered 500",
        )

    [listed] = owner.apps.deliveries(app.id, status="failed")
    assert isinstance(listed, Delivery)
    assert (listed.id, listed.application, listed.status, listed.attempts, listed.response_code) == (
        failed.id,
        app.id,
        "failed",
        8,
        500,
    )
    assert listed.payload is None and owner.apps.deliveries(app.id, status="delivered") == []
    assert owner.apps.delivery(app.id, failed.id).payload["data"] == {"execution_id": "run_x"}

    again = owner.apps.redeliver(app.id, failed.id)
    assert (again.id, again.status, again.attempts) == (failed.id, "pending", 0)

    owner.apps.revoke(app.id)
    with pytest.raises(ConflictError) as revoked:
        owner.apps.redeliver(app.id, failed.id)
    assert revoked.value.code == "application_revoked"


def test_an_application_over_its_own_rate_limit_gets_rate_limit_error(nexus, register):
    app = register(rate_limit_per_minute=2)
    client = nexus(api_key=app.api_key)
    client.workflows.list()
    client.workflows.list()
    with pytest.raises(RateLimitError) as limited:
        client.workflows.list()
    error = limited.value
    assert (error.status, error.code, error.limit, error.remaining) == (429, "rate_limited", 2, 0)
    assert 1 <= error.retry_after <= 30  # a burst of 2, then one request every 30 s
    assert 0 < error.reset <= 60
    assert "this API application" in error.detail
