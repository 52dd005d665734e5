"""API applications over REST: registration with secrets shown once and stored hashed, the API key and OAuth2
tokens at work under the application's role and scopes, rotation, revocation, tenants, bad inputs."""

import hashlib

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher
from django.db import connection
from oauth2_provider.models import AccessToken
from oauth2_provider.models import Application as OAuthClient

from apps.accounts.models import ApiKey
from apps.audit.models import AuditEvent
from apps.integrations.models import Application
from apps.integrations.secrets import webhook_secret
from apps.runs.models import Execution

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://1.1.1.1/hooks"
FIELDS = {
    "id",
    "name",
    "tenant",
    "role",
    "scopes",
    "webhook_url",
    "webhook_events",
    "rate_limit_per_minute",
    "api_key_id",
    "api_key_prefix",
    "client_id",
    "created_by",
    "created_at",
    "revoked_at",
}
SECRETS = {"api_key", "client_secret", "webhook_secret"}


def _bearer(client, credential: str, method: str = "get", path: str = "/api/v1/workflows/", body: str = "{}"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {credential}"}
    if method == "get":
        return client.get(path, **headers)
    return getattr(client, method)(path, body, content_type="application/json", **headers)


@pytest.fixture
def hello(api):
    owner = api()
    assert owner.post("/api/v1/workflows/", {"slug": "hello", "template": "basic"}).status_code == 201
    assert owner.post("/api/v1/workflows/hello/deploy/", {}).status_code == 200


def _runs(tenant) -> int:
    connection.set_tenant(tenant)
    count = Execution.objects.count()
    connection.set_schema_to_public()
    return count


def test_registration_shows_the_secrets_once_and_stores_only_hashes(api, register, nexus_world):
    # when the acme owner registers an application with a webhook
    scopes = ["workflows:read", "executions:run"]
    body = register(name="billing sync", webhook_url=PUBLIC_URL, scopes=scopes, rate_limit_per_minute=90)

    # then the answer carries the application and its secrets
    assert set(body) == FIELDS | SECRETS
    assert body["id"].startswith("app_") and body["tenant"] == "acme" and body["role"] == "operator"
    assert body["scopes"] == ["executions:run", "workflows:read"]
    assert body["webhook_events"] == ["*"] and body["rate_limit_per_minute"] == 90 and body["revoked_at"] is None
    assert body["api_key"].startswith(f"nxk_{body['api_key_prefix']}_")
    assert body["webhook_secret"].startswith("whsec_")
    # and the database holds no secret: the key's SHA-256, the toolkit's hash of the client secret, a salt
    app = Application.objects.get(id=body["id"])
    key = ApiKey.objects.get(id=body["api_key_id"])
    assert key.key_hash == hashlib.sha256(body["api_key"].encode()).hexdigest() and key.role == "operator"
    client = OAuthClient.objects.get(client_id=body["client_id"])
    assert client.client_secret != body["client_secret"] and identify_hasher(client.client_secret)
    assert check_password(body["client_secret"], client.client_secret)
    assert (client.client_type, client.authorization_grant_type) == ("confidential", "client-credentials")
    assert app.webhook_secret_salt and webhook_secret(app_id=app.id, salt=app.webhook_secret_salt) == body["webhook_secret"]
    # and the audit row names the application without any secret
    row = AuditEvent.objects.get(action="app.registered", target=body["id"])
    assert row.tenant_id == nexus_world["tenants"]["acme"].pk and row.details["client_id"] == body["client_id"]
    assert not any(body[secret] in str(row.details) for secret in SECRETS)
    # and reading it back never shows a secret again
    shown = api().get(f"/api/v1/apps/{body['id']}/").json()
    assert set(shown) == FIELDS and shown["client_id"] == body["client_id"]
    listed = api().get("/api/v1/apps/").json()
    assert listed["count"] == 1 and set(listed["results"][0]) == FIELDS


def test_without_a_webhook_url_there_is_no_webhook_secret_until_one_is_set(api, register):
    body = register(name="no hooks")
    assert "webhook_secret" not in body and body["webhook_events"] == []
    updated = api().patch(f"/api/v1/apps/{body['id']}/", {"webhook_url": PUBLIC_URL})
    assert updated.status_code == 200
    assert updated.json()["webhook_events"] == ["*"] and updated.json()["webhook_secret"].startswith("whsec_")
    again = api().patch(f"/api/v1/apps/{body['id']}/", {"webhook_url": "https://8.8.8.8/other"}).json()
    assert "webhook_secret" not in again and again["webhook_url"] == "https://8.8.8.8/other"


def test_the_api_key_acts_as_the_application_under_its_role(client, register, hello, nexus_world):
    app = register(name="runner")
    # an operator: may run workflows, may not create them
    ran = _bearer(client, app["api_key"], "post", "/api/v1/workflows/hello/execute/", '{"inputs": {"name": "App"}}')
    assert ran.status_code == 200 and ran.json()["result"] == {"message": "Hello, App!"}
    created = _bearer(client, app["api_key"], "post", "/api/v1/workflows/", '{"slug": "nope", "template": "basic"}')
    assert created.status_code == 403
    connection.set_tenant(nexus_world["tenants"]["acme"])
    assert Execution.objects.get(id=ran.json()["execution_id"]).actor == f"app:{app['id']}"


def test_an_oauth2_token_is_accepted_by_the_api_and_issuance_is_audited(client, register, oauth, hello):
    app = register(name="oauth")
    response = oauth("token", app["client_id"], app["client_secret"], grant_type="client_credentials")
    assert response.status_code == 200, response.content
    token = response.json()
    assert token["access_token"].startswith("nxo_") and len(token["access_token"]) >= 4 + 43
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    # the toolkit stored only the token's checksum
    stored = AccessToken.objects.get(token_checksum=hashlib.sha256(token["access_token"].encode()).hexdigest())
    assert stored.token == "" and stored.application.client_id == app["client_id"]
    listed = _bearer(client, token["access_token"])
    assert listed.status_code == 200 and listed.json()["count"] == 1
    ran = _bearer(client, token["access_token"], "post", "/api/v1/workflows/hello/execute/", '{"inputs": {"name": "T"}}')
    assert ran.status_code == 200
    row = AuditEvent.objects.get(action="oauth.token_issued", target=app["id"])
    assert row.actor == f"app:{app['id']}" and token["access_token"] not in str(row.details)


def test_client_authentication_by_form_fields_works_too(register, oauth):
    app = register(name="form auth")
    response = oauth("token", app["client_id"], app["client_secret"], basic_auth=False, grant_type="client_credentials")
    assert response.status_code == 200 and response.json()["access_token"].startswith("nxo_")


@pytest.mark.parametrize("credential", ["api_key", "oauth"])
def test_scopes_narrow_the_role(client, register, token_for, hello, nexus_world, credential):
    # given an operator application that may only read workflows
    app = register(name="reader", scopes=["workflows:read"])
    raw = app["api_key"] if credential == "api_key" else token_for(app)
    acme = nexus_world["tenants"]["acme"]
    before = _runs(acme)
    # then it reads workflows but may not run one, though its role could
    assert _bearer(client, raw).status_code == 200
    refused = _bearer(client, raw, "post", "/api/v1/workflows/hello/execute/", '{"inputs": {"name": "x"}}')
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert "executions:run" in refused.json()["detail"]
    assert _bearer(client, raw, "get", "/api/v1/executions/").status_code == 403
    assert _runs(acme) == before


def test_a_token_gets_the_scopes_asked_for_and_never_more(client, register, oauth, token_for, hello):
    app = register(name="narrow", scopes=["workflows:read", "executions:run"])
    # asking for a subset narrows the token
    narrow = token_for(app, scope="workflows:read")
    assert _bearer(client, narrow).status_code == 200
    assert _bearer(client, narrow, "post", "/api/v1/workflows/hello/execute/", '{"inputs": {}}').status_code == 403
    # asking for nothing gets the application's scopes
    full = oauth("token", app["client_id"], app["client_secret"], grant_type="client_credentials").json()
    assert sorted(full["scope"].split()) == ["executions:run", "workflows:read"]
    # a scope the application lacks, or an unknown one: invalid_scope
    for scope in ("datasets:write", "workflows:read root"):
        refused = oauth("token", app["client_id"], app["client_secret"], grant_type="client_credentials", scope=scope)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"


def test_narrowing_an_applications_scopes_narrows_its_live_tokens(client, api, register, token_for):
    app = register(name="shrinking")
    token = token_for(app)
    assert _bearer(client, token).status_code == 200
    assert api().patch(f"/api/v1/apps/{app['id']}/", {"scopes": ["executions:read"]}).status_code == 200
    assert _bearer(client, token).status_code == 403
    assert _bearer(client, token, "get", "/api/v1/executions/").status_code == 200


def test_token_requests_that_fail_are_refused_and_audited(register, oauth):
    app = register(name="failing")
    wrong = oauth("token", app["client_id"], "not-the-secret", grant_type="client_credentials")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    unknown = oauth("token", "no-such-client", "x", grant_type="client_credentials")
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    password = oauth("token", app["client_id"], app["client_secret"], grant_type="password", username="u", password="p")
    assert password.status_code == 400 and password.json()["error"] == "unsupported_grant_type"
    rows = AuditEvent.objects.filter(action="oauth.token_failed")
    mine = rows.get(target=app["id"], details__error="invalid_client")
    assert mine.outcome == "denied" and mine.details["client_id"] == app["client_id"]
    assert rows.filter(target="oauth", details__client_id="no-such-client").exists()


def test_introspection_tells_a_client_about_its_own_tokens_only(register, oauth, token_for):
    mine, other = register(name="mine", scopes=["workflows:read"]), register(name="other")
    token, others = token_for(mine), token_for(other)
    answer = oauth("introspect", mine["client_id"], mine["client_secret"], token=token)
    assert answer.status_code == 200
    claims = answer.json()
    assert claims["active"] is True and claims["scope"] == "workflows:read" and claims["sub"] == mine["id"]
    assert claims["client_id"] == mine["client_id"] and claims["tenant"] == "acme" and claims["exp"] > claims["iat"]
    assert oauth("introspect", mine["client_id"], mine["client_secret"], token=others).json() == {"active": False}
    assert oauth("introspect", mine["client_id"], mine["client_secret"], token="nxo_unknown").json() == {"active": False}
    refused = oauth("introspect", mine["client_id"], "wrong", token=token)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_a_revoked_token_stops_working_at_once(client, register, oauth, token_for):
    app = register(name="revoking")
    token, other = token_for(app), token_for(app)
    assert _bearer(client, token).status_code == 200  # resolved and cached
    revoked = oauth("revoke_token", app["client_id"], app["client_secret"], token=token, token_type_hint="access_token")
    assert revoked.status_code == 200
    assert _bearer(client, token).status_code == 401
    assert oauth("introspect", app["client_id"], app["client_secret"], token=token).json() == {"active": False}
    assert _bearer(client, other).status_code == 200
    assert AuditEvent.objects.filter(action="oauth.token_revoked", target=app["id"]).exists()


def test_another_client_cannot_revoke_a_token(client, register, oauth, token_for):
    app, thief = register(name="victim"), register(name="thief")
    token = token_for(app)
    assert oauth("revoke_token", thief["client_id"], thief["client_secret"], token=token).status_code == 200
    assert _bearer(client, token).status_code == 200


def test_rotation_replaces_each_credential_and_the_old_ones_stop_working(client, api, register, oauth, token_for):
    app = register(name="rotating", webhook_url=PUBLIC_URL)
    token = token_for(app)
    assert _bearer(client, app["api_key"]).status_code == 200 and _bearer(client, token).status_code == 200

    response = api().post(f"/api/v1/apps/{app['id']}/rotate/", {})
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["api_key"] != app["api_key"] and rotated["client_secret"] != app["client_secret"]
    assert rotated["webhook_secret"] != app["webhook_secret"] and rotated["client_id"] == app["client_id"]
    assert rotated["api_key_id"] != app["api_key_id"]
    # the old key, the old secret and the tokens issued with it no longer work; the new ones do
    assert _bearer(client, app["api_key"]).status_code == 401
    assert _bearer(client, token).status_code == 401
    old_secret = oauth("token", app["client_id"], app["client_secret"], grant_type="client_credentials")
    assert old_secret.status_code == 401
    assert _bearer(client, rotated["api_key"]).status_code == 200
    assert _bearer(client, token_for({**app, **rotated})).status_code == 200
    row = AuditEvent.objects.get(action="app.rotated", target=app["id"])
    assert row.details["credentials"] == ["api_key", "client_secret", "webhook_secret"]
    assert row.details["previous_api_key_id"] == app["api_key_id"]


def test_rotating_one_credential_leaves_the_others(client, api, register, token_for):
    app = register(name="one at a time")
    token = token_for(app)
    rotated = api().post(f"/api/v1/apps/{app['id']}/rotate/", {"credentials": ["api_key"]}).json()
    assert set(rotated) & SECRETS == {"api_key"}
    assert _bearer(client, token).status_code == 200 and _bearer(client, app["api_key"]).status_code == 401
    bad = api().post(f"/api/v1/apps/{app['id']}/rotate/", {"credentials": ["password"]})
    assert bad.status_code == 400 and "credentials" in str(bad.json()["fields"])


def test_revocation_ends_every_credential_and_is_idempotent(client, api, register, oauth, token_for):
    app = register(name="leaving")
    token = token_for(app)
    assert _bearer(client, app["api_key"]).status_code == 200 and _bearer(client, token).status_code == 200

    response = api().post(f"/api/v1/apps/{app['id']}/revoke/", {})
    assert response.status_code == 200 and response.json()["revoked_at"] is not None
    assert _bearer(client, app["api_key"]).status_code == 401
    assert _bearer(client, token).status_code == 401
    again = oauth("token", app["client_id"], app["client_secret"], grant_type="client_credentials")
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    assert not AccessToken.objects.filter(application__client_id=app["client_id"]).exists()
    # revoking again changes nothing; changing a revoked application is a conflict
    assert api().post(f"/api/v1/apps/{app['id']}/revoke/", {}).json()["revoked_at"] == response.json()["revoked_at"]
    assert api().patch(f"/api/v1/apps/{app['id']}/", {"name": "back"}).status_code == 409
    assert api().post(f"/api/v1/apps/{app['id']}/rotate/", {}).status_code == 409
    rows = AuditEvent.objects.filter(action="app.revoked", target=app["id"]).order_by("ts")
    assert [row.details["already_revoked"] for row in rows] == [False, True]


def test_another_tenants_application_does_not_exist(api, register):
    app = register(name="acme only")
    globex = api(tenant="globex")
    for method, path in [
        ("get", f"/api/v1/apps/{app['id']}/"),
        ("patch", f"/api/v1/apps/{app['id']}/"),
        ("post", f"/api/v1/apps/{app['id']}/rotate/"),
        ("post", f"/api/v1/apps/{app['id']}/revoke/"),
    ]:
        response = globex.get(path) if method == "get" else getattr(globex, method)(path, {"name": "x"})
        assert response.status_code == 404 and response.json()["code"] == "application_not_found", (method, path)
    assert globex.get("/api/v1/apps/").json() == {"count": 0, "results": []}
    for malformed in ("app_x", "app_" + "x" * 300, "wf_01abc"):
        response = api().get(f"/api/v1/apps/{malformed}/")
        assert response.status_code == 404 and response.json()["code"] == "application_not_found", malformed
    assert Application.objects.get(id=app["id"]).revoked_at is None and Application.objects.get(id=app["id"]).name == "acme only"


def test_an_application_reads_itself_and_nothing_else(client, register):
    app, other = register(name="self", scopes=["workflows:read"]), register(name="other")
    assert _bearer(client, app["api_key"], "get", f"/api/v1/apps/{app['id']}/").json()["id"] == app["id"]
    assert _bearer(client, app["api_key"], "get", f"/api/v1/apps/{other['id']}/").status_code == 403
    assert _bearer(client, app["api_key"], "get", "/api/v1/apps/").status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "r", "role": "superuser"}, "role"),
        ({"name": "s", "scopes": ["workflows:read", "root"]}, "scopes"),
        ({"name": "u", "webhook_url": "ftp://1.1.1.1/x"}, "webhook_url"),
        ({"name": "u", "webhook_url": "not a url"}, "webhook_url"),
        ({"name": "u", "webhook_url": "https://user:pw@1.1.1.1/x"}, "webhook_url"),
        ({"name": "e", "webhook_url": PUBLIC_URL, "webhook_events": ["execution.completed", "Bad Event"]}, "webhook_events"),
        ({"name": "l", "rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"name": "l", "rate_limit_per_minute": "many"}, "rate_limit_per_minute"),
    ],
)
def test_bad_inputs_are_400_naming_the_field(api, body, field):
    response = api().post("/api/v1/apps/", body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert any(name.split("[")[0].split(".")[0] == field for name in response.json()["fields"]), response.json()
    assert not Application.objects.exists()


def test_several_bad_fields_are_named_at_once(api, settings):
    settings.NEXUS_WEBHOOK_ALLOW_PRIVATE = False
    response = api().post("/api/v1/apps/", {"name": " ", "webhook_url": "http://127.0.0.1/x", "webhook_events": ["?"]})
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"name", "webhook_url", "webhook_events"}


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/hooks", "http://10.0.0.5/hooks", "http://169.254.169.254/latest", "http://[::1]/x"]
)
def test_a_private_webhook_url_is_refused_unless_allowed(api, settings, url):
    settings.NEXUS_WEBHOOK_ALLOW_PRIVATE = False
    refused = api().post("/api/v1/apps/", {"name": "internal", "webhook_url": url})
    assert refused.status_code == 400 and refused.json()["code"] == "invalid"
    reason = refused.json()["fields"]["webhook_url"]
    assert "address" in reason and "NEXUS_WEBHOOK_ALLOW_PRIVATE" in reason
    assert not Application.objects.exists()
    settings.NEXUS_WEBHOOK_ALLOW_PRIVATE = True
    assert api().post("/api/v1/apps/", {"name": "internal", "webhook_url": url}).status_code == 201


def test_changing_an_application(api, register):
    app = register(name="before", webhook_url=PUBLIC_URL)
    response = api().patch(
        f"/api/v1/apps/{app['id']}/",
        {"name": "after", "webhook_events": ["execution.*", "session.created"], "rate_limit_per_minute": None, "scopes": []},
    )
    assert response.status_code == 200
    changed = response.json()
    assert (changed["name"], changed["webhook_events"], changed["rate_limit_per_minute"]) == (
        "after",
        ["execution.*", "session.created"],
        None,
    )
    assert ApiKey.objects.get(id=app["api_key_id"]).name.startswith("after")
    row = AuditEvent.objects.get(action="app.updated", target=app["id"])
    assert row.details["changed"]["name"] == "after" and row.details["previous"]["name"] == "before"
    assert api().patch(f"/api/v1/apps/{app['id']}/", {}).status_code == 400
    bad = api().patch(f"/api/v1/apps/{app['id']}/", {"webhook_url": "http://127.0.0.1/x", "scopes": ["nope"]})
    assert bad.status_code == 400 and Application.objects.get(id=app["id"]).webhook_url == PUBLIC_URL


def test_only_admins_and_owners_manage_applications(api):
    for role in ("viewer", "operator", "developer"):
        client = api(role=role)
        assert client.get("/api/v1/apps/").status_code == 403
        assert client.post("/api/v1/apps/", {"name": "mine"}).status_code == 403
    assert not Application.objects.exists()


def test_listing_costs_the_same_queries_for_any_number_of_applications(api, register, django_assert_num_queries):
    register(name="one")
    owner = api()
    owner.get("/api/v1/apps/")  # warm the per-process caches
    with django_assert_num_queries(1):
        assert owner.get("/api/v1/apps/").json()["count"] == 1
    for index in range(3):
        register(name=f"more {index}")
    owner.get("/api/v1/apps/")
    with django_assert_num_queries(1):
        assert owner.get("/api/v1/apps/").json()["count"] == 4
