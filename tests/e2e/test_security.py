"""Security of a zero-configuration `nexus up`, through the public port only: a token signed with a key published
in the source is refused, the installation's own key survives a restart, and the client cannot move daphne's root
path to reach the REST API through the realtime process."""

import json
import os
import urllib.request

import jwt
import pytest

from apps.accounts.auth_config import jwt_signing_key
from apps.ops.installation_keys import PUBLISHED_SECRET_KEYS
from tests.e2e.conftest import Installation

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def request(method: str, url: str, body=None, headers: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    nexus = Installation(tmp_path_factory.mktemp("security"), redis_db=11)
    try:
        nexus.start()
        yield nexus
    finally:
        nexus.stop()
        nexus.drop()


@pytest.fixture(scope="module")
def admin_token(installation) -> str:
    credentials = installation.credentials
    status, body = request(
        "POST",
        f"{installation.base_url}/api/v1/auth/token/",
        {"username": credentials["username"], "password": credentials["password"], "tenant": credentials["tenant"]},
    )
    assert status == 200, body
    return json.loads(body)["access"]


def _tenants(installation, token: str) -> int:
    return request("GET", f"{installation.base_url}/api/v1/tenants/", headers={"Authorization": f"Bearer {token}"})[0]


def test_a_platform_admin_token_signed_with_the_published_key_is_refused(installation, admin_token):
    # The genuine token's claims (user 1, the platform admin, its tenant), signed with each key the source publishes.
    claims = jwt.decode(admin_token, options={"verify_signature": False})
    assert claims["user_id"] in (1, "1") and claims["token_type"] == "access"
    assert _tenants(installation, admin_token) == 200
    for published in sorted(PUBLISHED_SECRET_KEYS):
        forged = jwt.encode(claims, jwt_signing_key(configured="", secret_key=published), algorithm="HS256")
        assert _tenants(installation, forged) == 401
    secrets_file = installation.data_dir / "secrets.json"
    assert secrets_file.stat().st_mode & 0o777 == 0o600


def test_daphne_root_path_from_a_client_does_not_reach_the_rest_api(installation):
    key = {"Authorization": f"Bearer {installation.credentials['api_key']}"}
    status, body = request("GET", f"{installation.base_url}/api/v1/workflows/", headers=key)
    assert status == 200 and "results" in json.loads(body)
    for prefix in ("/mcpx", "/mcp"):
        # Through HAProxy: only /mcp and /mcp/ go to daphne, and the header is dropped.
        status, body = request(
            "GET", f"{installation.base_url}{prefix}/api/v1/workflows/", headers={**key, "Daphne-Root-Path": prefix}
        )
        assert status == 404, (prefix, status, body[:200])
        assert b'"results"' not in body
    # Straight to daphne (behind the proxy, but defended there too): the root path is ignored.
    realtime = f"http://127.0.0.1:{installation.port + 2}"
    status, body = request("GET", f"{realtime}/mcpx/api/v1/workflows/", headers={**key, "Daphne-Root-Path": "/mcpx"})
    assert status == 404 and b'"results"' not in body


def test_the_installation_keeps_its_keys_across_a_restart(installation, admin_token):
    secrets_before = (installation.data_dir / "secrets.json").read_text()
    installation.stop()
    installation.start()
    assert (installation.data_dir / "secrets.json").read_text() == secrets_before
    assert _tenants(installation, admin_token) == 200  # a token issued before the restart is still valid
    assert os.environ.get("NEXUS_SECRET_KEY") != json.loads(secrets_before)["secret_key"]
