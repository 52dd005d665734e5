"""Login through real processes: `nexus up` configured with NEXUS_LDAP_* against a private slapd, the REST API
over HTTP via HAProxy, and `nexus login` as a subprocess."""

import json
import subprocess

import pytest

from tests.e2e.conftest import NEXUS, REPO, Installation, http
from tests.ldap.slapd import GROUPS, password_of, slapd  # noqa: F401 (slapd: a session fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The fresh installation has one tenant, `default`: map the directory's groups onto it.
ROLE_MAP = {
    f"cn=developers,{GROUPS}": {"tenant": "default", "role": "developer"},
    f"cn=viewers,{GROUPS}": {"tenant": "default", "role": "viewer"},
}


@pytest.fixture
def nexus_with_ldap(tmp_path, slapd):  # noqa: F811 (the fixture imported above)
    installation = Installation(tmp_path, redis_db=7)
    installation.env.update({**slapd.environment(), "NEXUS_LDAP_ROLE_MAP": json.dumps(ROLE_MAP)})
    try:
        installation.start()
        yield installation
    finally:
        installation.stop()
        installation.drop()


def test_ldap_and_local_users_log_in_over_http_and_on_the_cli(nexus_with_ldap):
    nexus = nexus_with_ldap
    token_url = f"{nexus.base_url}/api/v1/auth/token/"

    status, dora = http("POST", token_url, {"username": "dora", "password": password_of("dora")})
    assert status == 200, dora
    assert (dora["tenant"], dora["role"], dora["expires_in"]) == ("default", "developer", 900)
    status, created = http(
        "POST", f"{nexus.base_url}/api/v1/workflows/", {"slug": "by-dora", "template": "basic"}, key=dora["access"]
    )
    assert status == 201 and created["created_by"] == "user:dora"

    status, vic = http("POST", token_url, {"username": "vic", "password": password_of("vic")})
    assert (status, vic["role"]) == (200, "viewer")
    status, refused = http("POST", f"{nexus.base_url}/api/v1/workflows/", {"slug": "by-vic"}, key=vic["access"])
    assert (status, refused["code"]) == (403, "permission_denied")
    status, listed = http("GET", f"{nexus.base_url}/api/v1/workflows/", key=vic["access"])
    assert status == 200 and [w["slug"] for w in listed["results"]] == ["by-dora"]

    for username in ("dora", "nobody-here"):
        status, error = http("POST", token_url, {"username": username, "password": "wrong-password"})
        assert (status, error) == (401, {"detail": "invalid username or password", "code": "invalid_credentials"})

    status, refreshed = http("POST", f"{nexus.base_url}/api/v1/auth/refresh/", {"refresh": dora["refresh"]})
    assert status == 200 and refreshed["role"] == "developer"
    assert http("GET", f"{nexus.base_url}/api/v1/workflows/", key=refreshed["access"])[0] == 200
    assert http("GET", f"{nexus.base_url}/api/v1/workflows/", key=dora["access"] + "x")[0] == 401

    # The local platform admin logs in too, with the first credentials `nexus up` wrote.
    admin = nexus.credentials
    status, body = http("POST", token_url, {"username": admin["username"], "password": admin["password"], "tenant": "default"})
    assert (status, body["role"]) == (200, "owner")

    result = subprocess.run(
        [NEXUS, "login", "--username=dora", "--password-stdin", "--json"],
        input=password_of("dora") + "\n",
        env=nexus.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    pair = json.loads(result.stdout)
    assert (pair["tenant"], pair["role"]) == ("default", "developer")
    assert http("GET", f"{nexus.base_url}/api/v1/workflows/", key=pair["access"])[0] == 200
