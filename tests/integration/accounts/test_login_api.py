"""Login with a local user: the JWT pair, its claims, tenant choice, and what the middleware does with it."""

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings

from tests.integration.audit.conftest import audit_rows  # noqa: F401 (fixture, used by name below)

pytestmark = pytest.mark.django_db

INVALID_CREDENTIALS = {"detail": "invalid username or password", "code": "invalid_credentials"}
INVALID_TOKEN = {"detail": "invalid or expired token", "code": "invalid_credentials"}


def claims(token: str) -> dict:
    return jwt.decode(token, settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"])


def test_a_member_of_one_tenant_logs_in_without_naming_it(make_user, login, nexus_world):
    user = make_user("ann", acme="developer")

    response = login("ann", "a-long-password-1")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "tenant", "role", "expires_in"}
    assert (body["tenant"], body["role"], body["expires_in"]) == ("acme", "developer", 15 * 60)
    access = claims(body["access"])
    assert access["token_type"] == "access"
    assert (access["tenant"], access["tenant_id"], access["role"]) == ("acme", nexus_world["tenants"]["acme"].pk, "developer")
    assert (access["user_id"], access["username"]) == (str(user.pk), "ann")
    assert access["exp"] - access["iat"] == 15 * 60
    refresh = claims(body["refresh"])
    assert refresh["token_type"] == "refresh" and refresh["tenant"] == "acme"
    assert refresh["exp"] - refresh["iat"] == 24 * 3600


def test_the_access_token_acts_as_the_user_under_their_role(make_user, login, bearer):
    make_user("ann", acme="developer")
    token = login("ann", "a-long-password-1").json()["access"]

    created = bearer(token).post("/api/v1/workflows/", {"slug": "by-ann", "template": "basic"})

    assert created.status_code == 201, created.content
    assert created.json()["created_by"] == "user:ann"
    assert [w["slug"] for w in bearer(token).get("/api/v1/workflows/").json()["results"]] == ["by-ann"]


def test_a_viewer_token_may_read_but_not_create(make_user, login, bearer):
    make_user("val", acme="viewer")
    token = login("val", "a-long-password-1").json()["access"]

    assert bearer(token).get("/api/v1/workflows/").status_code == 200
    refused = bearer(token).post("/api/v1/workflows/", {"slug": "by-val", "template": "basic"})

    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert bearer(token).get("/api/v1/workflows/").json()["count"] == 0


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(make_user, login):
    make_user("ann", acme="developer")

    wrong = login("ann", "not-the-password", tenant="acme")
    unknown = login("nobody-at-all", "not-the-password", tenant="acme")

    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json() == INVALID_CREDENTIALS
        assert response["WWW-Authenticate"] == 'Bearer realm="nexus"'


def test_an_inactive_user_gets_the_same_answer_as_a_wrong_password(make_user, login):
    user = make_user("ann", acme="developer")
    user.is_active = False
    user.save(update_fields=["is_active"])

    response = login("ann", "a-long-password-1")

    assert (response.status_code, response.json()) == (401, INVALID_CREDENTIALS)


def test_a_member_of_several_tenants_must_name_one(make_user, login):
    make_user("sam", acme="viewer", globex="admin")

    response = login("sam", "a-long-password-1")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "name the tenant to log in to",
        "code": "tenant_required",
        "fields": {"tenant": "required: one of acme, globex"},
    }
    named = login("sam", "a-long-password-1", tenant="globex")
    assert named.status_code == 200 and (named.json()["tenant"], named.json()["role"]) == ("globex", "admin")


def test_an_unknown_tenant_and_another_tenant_are_one_answer(make_user, login):
    make_user("ann", acme="developer")

    for slug in ("globex", "no-such-tenant"):
        response = login("ann", "a-long-password-1", tenant=slug)
        assert response.status_code == 403
        assert response.json() == {"detail": f"not a member of tenant '{slug}'", "code": "not_a_member"}


def test_a_user_without_memberships_is_not_a_member(make_user, login):
    make_user("lone")

    response = login("lone", "a-long-password-1")

    assert (response.status_code, response.json()["code"]) == (403, "not_a_member")


def test_a_platform_admin_picks_any_tenant_as_owner(make_user, login, bearer, nexus_world):
    make_user("root", platform_admin=True)

    assert login("root", "a-long-password-1").json()["code"] == "tenant_required"
    response = login("root", "a-long-password-1", tenant="globex")

    assert response.status_code == 200 and (response.json()["tenant"], response.json()["role"]) == ("globex", "owner")
    created = bearer(response.json()["access"]).post("/api/v1/workflows/", {"slug": "by-root", "template": "basic"})
    assert created.status_code == 201 and created.json()["created_by"] == "user:root"


def test_bad_login_bodies_name_the_field(login, client):
    response = client.post("/api/v1/auth/token/", json.dumps({"username": "ann"}), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"password": "This field is required."}
    response = client.post("/api/v1/auth/token/", "{not json", content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")
    assert client.get("/api/v1/auth/token/").status_code == 405


def test_only_the_two_login_paths_answer_without_a_credential(client, make_user, login):
    make_user("ann", acme="developer")
    for path in ("/api/v1/auth/", "/api/v1/auth/token", "/api/v1/auth/tokens/", "/api/v1/auth/token/x/", "/api/v1/auth/verify/"):
        response = client.post(path, "{}", content_type="application/json")
        assert response.status_code == 401, path
        assert response.json()["code"] == "not_authenticated"
    # A stale credential sent along does not stand in the way of logging in again.
    response = login("ann", "a-long-password-1", HTTP_AUTHORIZATION="Bearer a.stale.token")
    assert response.status_code == 200


def test_a_token_for_acme_cannot_see_globex(make_user, login, bearer, api):
    created = api(tenant="globex").post("/api/v1/workflows/", {"slug": "globex-secret", "template": "basic"}).json()
    make_user("ann", acme="owner")
    token = login("ann", "a-long-password-1").json()["access"]

    for ref in (created["id"], "globex-secret"):
        response = bearer(token).get(f"/api/v1/workflows/{ref}/")
        assert response.status_code == 404 and response.json()["code"] == "workflow_not_found"
    assert bearer(token).get("/api/v1/workflows/").json()["count"] == 0
    # The tenant is the token's: a header naming another tenant changes nothing.
    listed = bearer(token).client.get("/api/v1/workflows/", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_NEXUS_TENANT="globex")
    assert listed.json()["count"] == 0


def _forged(token: str, **changes) -> str:
    payload = {**claims(token), **changes}
    return jwt.encode(payload, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def test_expired_tampered_and_refresh_tokens_are_not_access_tokens(make_user, login, bearer):
    make_user("ann", acme="developer")
    pair = login("ann", "a-long-password-1").json()
    an_hour_ago = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    expired = _forged(pair["access"], exp=an_hour_ago)
    other_key = jwt.encode(claims(pair["access"]), "another-signing-key-that-is-long-enough-0123456789", algorithm="HS256")
    header, payload, signature = pair["access"].split(".")
    tampered = f"{header}.{_forged(pair['access'], tenant_id=0).split('.')[1]}.{signature}"

    for token in (expired, other_key, tampered, pair["refresh"], "a.b.c"):
        response = bearer(token).get("/api/v1/workflows/")
        assert response.status_code == 401
        assert response.json() == INVALID_TOKEN
        assert response["WWW-Authenticate"] == 'Bearer realm="nexus"'
    assert bearer(pair["access"]).get("/api/v1/workflows/").status_code == 200


def test_a_token_without_a_tenant_claim_is_refused(make_user, login, bearer):
    make_user("ann", acme="developer")
    access = claims(login("ann", "a-long-password-1").json()["access"])
    del access["tenant_id"]
    token = jwt.encode(access, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")

    assert bearer(token).get("/api/v1/workflows/").status_code == 401


def _refresh(client, token: str):
    return client.post("/api/v1/auth/refresh/", json.dumps({"refresh": token}), content_type="application/json")


def test_refresh_gives_the_next_pair(make_user, login, bearer, client):
    make_user("ann", acme="developer")
    pair = login("ann", "a-long-password-1").json()

    response = _refresh(client, pair["refresh"])

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "tenant", "role", "expires_in"}
    assert (body["tenant"], body["role"], body["expires_in"]) == ("acme", "developer", 900)
    assert claims(body["access"])["token_type"] == "access"
    assert bearer(body["access"]).get("/api/v1/workflows/").status_code == 200
    # the new refresh token is another token with the same claims and expiry: a session is no longer than it was
    old, new = claims(pair["refresh"]), claims(body["refresh"])
    assert new["jti"] != old["jti"] and new["exp"] == old["exp"]
    kept = ("user_id", "tenant", "tenant_id", "pwv")
    assert {k: new[k] for k in kept} == {k: old[k] for k in kept}
    for token in (pair["access"], "garbage"):
        refused = client.post("/api/v1/auth/refresh/", json.dumps({"refresh": token}), content_type="application/json")
        assert (refused.status_code, refused.json()) == (401, INVALID_TOKEN)


def test_the_current_role_counts_not_the_one_in_the_token(make_user, login, bearer, nexus_world, client):
    from apps.accounts.services import membership_set

    user = make_user("ann", acme="developer")
    pair = login("ann", "a-long-password-1").json()

    membership_set(user=user, tenant=nexus_world["tenants"]["acme"], role="viewer")

    refused = bearer(pair["access"]).post("/api/v1/workflows/", {"slug": "too-late", "template": "basic"})
    assert refused.status_code == 403
    refreshed = client.post("/api/v1/auth/refresh/", json.dumps({"refresh": pair["refresh"]}), content_type="application/json")
    assert refreshed.json()["role"] == "viewer" and claims(refreshed.json()["access"])["role"] == "viewer"


def test_a_removed_member_and_a_deactivated_user_lose_access(make_user, login, bearer, nexus_world, client):
    from apps.accounts.selectors import member_cache
    from apps.accounts.services import membership_remove

    ann = make_user("ann", acme="developer")
    bob = make_user("bob", acme="developer")
    ann_pair = login("ann", "a-long-password-1").json()
    bob_token = login("bob", "a-long-password-1").json()["access"]
    assert bearer(ann_pair["access"]).get("/api/v1/workflows/").status_code == 200
    assert bearer(bob_token).get("/api/v1/workflows/").status_code == 200

    membership_remove(user=ann, tenant=nexus_world["tenants"]["acme"])
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    member_cache.clear()  # what NEXUS_AUTH_CACHE_S seconds do in every other process

    for token in (ann_pair["access"], bob_token):
        response = bearer(token).get("/api/v1/workflows/")
        assert (response.status_code, response.json()) == (401, INVALID_TOKEN)
    refused = client.post("/api/v1/auth/refresh/", json.dumps({"refresh": ann_pair["refresh"]}), content_type="application/json")
    assert refused.status_code == 401


def test_the_membership_lookup_is_cached_per_process(make_user, login, bearer, django_assert_num_queries):
    make_user("ann", acme="developer")
    token = login("ann", "a-long-password-1").json()["access"]
    bearer(token).get("/api/v1/workflows/")

    from apps.accounts.selectors import principal_from_access_token

    with django_assert_num_queries(0):
        principal, tenant = principal_from_access_token(token)
    assert (principal.kind, principal.actor, principal.role, principal.tenant_slug) == ("user", "user:ann", "developer", "acme")
    assert principal.user_id is not None and principal.is_platform_admin is False and tenant.slug == "acme"


def test_every_login_attempt_passes_through_the_audit_hook(make_user, login, monkeypatch):
    from apps.accounts import services

    calls = []
    monkeypatch.setattr(services, "login_attempted", lambda **kwargs: calls.append(kwargs))
    make_user("ann", acme="developer")

    login("ann", "a-long-password-1", REMOTE_ADDR="127.0.0.9")
    login("ann", "wrong-password-here", tenant="acme")
    login("ann", "a-long-password-1", tenant="globex")

    assert [(c["username"], c["tenant_slug"], c["outcome"], c["reason"]) for c in calls] == [
        ("ann", "acme", "success", ""),
        ("ann", "acme", "failure", "invalid_credentials"),
        ("ann", "globex", "failure", "not_a_member"),
    ]
    assert calls[0]["ip"] == "127.0.0.9" and calls[0]["channel"] == "api"
    assert not any("password" in json.dumps(c) for c in calls)


def test_the_audit_hook_logs_for_now(make_user, login, caplog):
    make_user("ann", acme="developer")

    with caplog.at_level("INFO", logger="nexus.auth"):
        login("ann", "a-long-password-1")
        login("ann", "wrong-password-here")

    messages = [r.getMessage() for r in caplog.records if r.name == "nexus.auth"]
    assert len(messages) == 2
    assert messages[0].startswith("login succeeded: user='ann' tenant=acme")
    assert messages[1].startswith("login failed: user='ann' tenant=None") and "reason=invalid_credentials" in messages[1]
    assert "wrong-password-here" not in caplog.text


def test_the_openapi_schema_documents_login(api):
    text = api().get("/api/schema/", format="json").content.decode()
    assert "/api/v1/auth/token/" in text and "/api/v1/auth/refresh/" in text


def test_a_refresh_token_works_once(make_user, login, bearer, client):
    make_user("ann", acme="developer")
    pair = login("ann", "a-long-password-1").json()
    rotated = _refresh(client, pair["refresh"]).json()

    # when the spent refresh token is used again
    reused = _refresh(client, pair["refresh"])

    # then it is refused like a forged one, and the pair it was rotated into still works, once
    assert (reused.status_code, reused.json()) == (401, INVALID_TOKEN)
    again = _refresh(client, rotated["refresh"])
    assert again.status_code == 200
    assert _refresh(client, rotated["refresh"]).status_code == 401
    assert bearer(again.json()["access"]).get("/api/v1/workflows/").status_code == 200


def _platform_admin():
    from apps.core.principal import Principal

    return Principal(kind="system", actor="system:test", tenant_id=None, tenant_slug=None, role=None, is_platform_admin=True)


def test_a_password_change_ends_every_refresh_and_access_token(make_user, login, bearer, client, audit_rows):  # noqa: F811
    from apps.accounts.services import user_password_set

    make_user("ann", acme="developer", globex="viewer")
    acme_pair = login("ann", "a-long-password-1", tenant="acme").json()
    globex_pair = login("ann", "a-long-password-1", tenant="globex").json()
    rotated = _refresh(client, acme_pair["refresh"]).json()

    user_password_set(principal=_platform_admin(), username="ann", password="another-long-password-2")

    # then no refresh token issued before the change refreshes, in any tenant
    for token in (rotated["refresh"], globex_pair["refresh"]):
        assert (_refresh(client, token).status_code, _refresh(client, token).json()) == (401, INVALID_TOKEN)
    # and no access token issued before it works (at once in this process; within NEXUS_AUTH_CACHE_S elsewhere)
    for token in (acme_pair["access"], rotated["access"], globex_pair["access"]):
        assert bearer(token).get("/api/v1/workflows/").status_code == 401
    # while the new password logs in, and its tokens work
    fresh = login("ann", "another-long-password-2", tenant="acme").json()
    assert bearer(fresh["access"]).get("/api/v1/workflows/").status_code == 200
    assert _refresh(client, fresh["refresh"]).status_code == 200
    changed = [row for row in audit_rows() if row.action == "user.password_changed"]
    assert [(row.actor, row.target, row.details) for row in changed] == [
        ("system:test", "user:ann", {"refresh_tokens_revoked": 2})
    ]


def test_a_password_changed_outside_nexus_ends_tokens_too(make_user, login, bearer, client):
    """Django's admin or `manage.py changepassword` revoke nothing themselves: the password version does."""
    from apps.accounts.selectors import member_cache

    ann = make_user("ann", acme="developer")
    pair = login("ann", "a-long-password-1").json()

    ann.set_password("changed-by-the-admin-site")
    ann.save(update_fields=["password"])
    member_cache.clear()  # what NEXUS_AUTH_CACHE_S seconds do

    assert bearer(pair["access"]).get("/api/v1/workflows/").status_code == 401
    assert _refresh(client, pair["refresh"]).status_code == 401


def test_member_removal_revokes_the_refresh_tokens_of_that_tenant_only(make_user, login, client, nexus_world):
    from apps.accounts.services import member_add, member_remove

    make_user("ann", acme="developer", globex="viewer")
    acme_refresh = login("ann", "a-long-password-1", tenant="acme").json()["refresh"]
    globex_refresh = login("ann", "a-long-password-1", tenant="globex").json()["refresh"]
    acme = nexus_world["tenants"]["acme"]

    member_remove(principal=_platform_admin(), tenant=acme, username="ann")
    assert _refresh(client, acme_refresh).status_code == 401
    # when ann is added back, the token from before her removal stays dead
    member_add(principal=_platform_admin(), tenant=acme, username="ann", role="developer")
    assert _refresh(client, acme_refresh).status_code == 401
    assert _refresh(client, globex_refresh).status_code == 200


def test_only_platform_admins_set_passwords_and_weak_ones_are_refused(make_user, acme):
    from django.contrib.auth import get_user_model

    from apps.accounts.services import user_password_set
    from apps.core.errors import PermissionDenied, ValidationFailed
    from apps.core.principal import Principal

    make_user("ann", acme="owner")
    owner = Principal(kind="user", actor="user:own", tenant_id=acme.pk, tenant_slug="acme", role="owner")
    before = get_user_model().objects.get(username="ann").password

    with pytest.raises(PermissionDenied, match="only platform admins may user update"):
        user_password_set(principal=owner, username="ann", password="another-long-password-2")
    with pytest.raises(ValidationFailed) as refused:
        user_password_set(principal=_platform_admin(), username="ann", password="short")
    assert refused.value.fields == {"password": "This password is too short. It must contain at least 10 characters."}
    assert get_user_model().objects.get(username="ann").password == before


def test_a_membership_the_directory_takes_away_revokes_that_tenants_refresh_tokens(make_user, login, client):
    from apps.accounts.auth_config import parse_role_map
    from apps.accounts.services import memberships_sync_from_groups

    ann = make_user("ann", acme="developer", globex="viewer")
    acme_refresh = login("ann", "a-long-password-1", tenant="acme").json()["refresh"]
    globex_refresh = login("ann", "a-long-password-1", tenant="globex").json()["refresh"]
    role_map = parse_role_map({"cn=devs,ou=groups,dc=example,dc=test": {"tenant": "acme", "role": "developer"}})

    # when ann's directory groups no longer grant her a role in acme
    assert memberships_sync_from_groups(user=ann, group_dns=[], role_map=role_map) == {"acme": None}

    assert _refresh(client, acme_refresh).status_code == 401
    assert _refresh(client, globex_refresh).status_code == 200
    # and when they grant it again, the token from before stays dead
    memberships_sync_from_groups(user=ann, group_dns=["cn=devs,ou=groups,dc=example,dc=test"], role_map=role_map)
    assert _refresh(client, acme_refresh).status_code == 401
    assert login("ann", "a-long-password-1", tenant="acme").status_code == 200
