"""API application fixtures: register through the REST API, OAuth2 requests through the Django test client."""

import base64
from urllib.parse import quote_plus

import pytest


@pytest.fixture(autouse=True)
def _fresh_credential_caches():
    """Resolved OAuth2 tokens are cached per process like keys; no test sees another's."""
    from apps.accounts.selectors import key_cache, oauth_token_cache

    oauth_token_cache.clear()
    yield
    oauth_token_cache.clear()
    key_cache.clear()


@pytest.fixture
def register(api):
    """register(**body) -> the 201 answer's JSON (as the acme owner unless `client` is given)."""

    def make(client=None, **body):
        body.setdefault("name", "integration")
        response = (client or api()).post("/api/v1/apps/", body)
        assert response.status_code == 201, response.content
        return response.json()

    return make


def basic(client_id: str, client_secret: str) -> str:
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


@pytest.fixture
def oauth(client):
    """oauth(path, client_id, client_secret, **form) -> the response of POST /oauth/<path>/ with HTTP Basic
    client authentication (or the form fields, with basic=False)."""

    def post(path: str, client_id: str, client_secret: str, *, basic_auth: bool = True, **form):
        headers = {}
        if basic_auth:
            headers["HTTP_AUTHORIZATION"] = basic(client_id, client_secret)
        else:
            form.update(client_id=client_id, client_secret=client_secret)
        return client.post(f"/oauth/{path}/", form, **headers)

    return post


@pytest.fixture
def token_for(oauth):
    """token_for(app, scope=None) -> a fresh access token of a registered app (the answer of register)."""

    def issue(app: dict, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        response = oauth("token", app["client_id"], app["client_secret"], **form)
        assert response.status_code == 200, response.content
        return response.json()["access_token"]

    return issue
