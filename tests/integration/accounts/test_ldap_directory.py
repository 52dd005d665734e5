"""Login with LDAP users against a private slapd (tests/ldap/): roles from groups, synchronised at each login."""

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.tenants.models import Tenant
from tests.ldap.slapd import password_of

pytestmark = pytest.mark.django_db

INVALID_CREDENTIALS = {"detail": "invalid username or password", "code": "invalid_credentials"}


def roles_of(username: str) -> dict[str, str]:
    return dict(Membership.objects.filter(user__username=username).values_list("tenant__slug", "role"))


def test_a_developer_from_ldap_gets_a_developer_token_and_creates_a_workflow(ldap_enabled, login, bearer):
    response = login("dora", password_of("dora"), tenant="acme")

    assert response.status_code == 200, response.content
    assert (response.json()["tenant"], response.json()["role"]) == ("acme", "developer")
    created = bearer(response.json()["access"]).post("/api/v1/workflows/", {"slug": "by-dora", "template": "basic"})
    assert created.status_code == 201, created.content
    assert created.json()["created_by"] == "user:dora"
    user = get_user_model().objects.get(username="dora")
    assert (user.email, user.first_name, user.last_name) == ("dora@example.test", "Dora", "Developer")
    assert not user.has_usable_password() and not user.is_superuser and not user.is_staff
    # The unmapped group she is also in grants nothing.
    assert roles_of("dora") == {"acme": "developer"}


def test_a_viewer_from_ldap_may_not_create_a_workflow(ldap_enabled, login, bearer):
    response = login("vic", password_of("vic"), tenant="acme")
    assert (response.status_code, response.json()["role"]) == (200, "viewer")
    token = response.json()["access"]

    refused = bearer(token).post("/api/v1/workflows/", {"slug": "by-vic", "template": "basic"})

    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert bearer(token).get("/api/v1/workflows/").json()["count"] == 0


def test_a_wrong_ldap_password_is_the_same_answer_as_an_unknown_user(ldap_enabled, login):
    wrong = login("dora", "not-doras-password", tenant="acme")
    unknown = login("nobody-in-ldap", "not-doras-password", tenant="acme")
    empty = login("dora", " ", tenant="acme")

    for response in (wrong, unknown, empty):
        assert (response.status_code, response.json()) == (401, INVALID_CREDENTIALS)
    assert not get_user_model().objects.filter(username__in=["dora", "nobody-in-ldap"]).exists()


def test_group_changes_apply_at_the_next_login(ldap_enabled, login, make_user, nexus_world, bearer):
    from apps.accounts.services import membership_set

    directory = ldap_enabled
    assert login("gail", password_of("gail"), tenant="acme").json()["role"] == "developer"  # developers and viewers
    gail = get_user_model().objects.get(username="gail")
    # A membership in a tenant the role map does not name is not the directory's business.
    membership_set(user=gail, tenant=Tenant.objects.get(slug="default"), role="operator")
    try:
        directory.group_remove("developers", "gail")
        downgraded = login("gail", password_of("gail"), tenant="acme")
        assert (downgraded.status_code, downgraded.json()["role"]) == (200, "viewer")
        assert roles_of("gail") == {"acme": "viewer", "default": "operator"}
        assert (
            bearer(downgraded.json()["access"]).post("/api/v1/workflows/", {"slug": "x", "template": "basic"}).status_code == 403
        )

        directory.group_remove("viewers", "gail")
        removed = login("gail", password_of("gail"), tenant="acme")
        assert (removed.status_code, removed.json()["code"]) == (403, "not_a_member")
        assert roles_of("gail") == {"default": "operator"}
        assert login("gail", password_of("gail")).json()["tenant"] == "default"
        synced = AuditEvent.objects.filter(action="member.synced", target="user:gail").order_by("seq")
        assert [(a.actor, a.details["from"], a.details["to"]) for a in synced] == [
            ("ldap", None, "developer"),
            ("ldap", "developer", "viewer"),
            ("ldap", "viewer", None),
        ]
        assert {a.tenant_id for a in synced} == {Tenant.objects.get(slug="acme").pk}
    finally:
        directory.group_add("developers", "gail")
        directory.group_add("viewers", "gail")


def test_an_old_token_follows_the_membership_the_directory_last_gave(ldap_enabled, login, bearer):
    directory = ldap_enabled
    first = login("gail", password_of("gail"), tenant="acme").json()["access"]
    try:
        directory.group_remove("developers", "gail")
        directory.group_remove("viewers", "gail")
        assert login("gail", password_of("gail"), tenant="acme").status_code == 403
    finally:
        directory.group_add("developers", "gail")
        directory.group_add("viewers", "gail")

    response = bearer(first).get("/api/v1/workflows/")

    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")


def test_groups_in_several_tenants_need_the_tenant_named(ldap_enabled, login):
    response = login("max", password_of("max"))

    assert response.status_code == 400
    assert response.json()["fields"] == {"tenant": "required: one of acme, globex"}
    assert roles_of("max") == {"acme": "developer", "globex": "operator"}
    globex = login("max", password_of("max"), tenant="globex")
    assert (globex.json()["tenant"], globex.json()["role"]) == ("globex", "operator")


def test_local_users_still_log_in_with_ldap_on(ldap_enabled, login, make_user):
    make_user("lou", acme="operator")

    response = login("lou", "a-long-password-1")

    assert (response.status_code, response.json()["role"]) == (200, "operator")


def test_a_directory_entry_cannot_take_over_a_local_account(ldap_enabled, login, make_user):
    make_user("dora", "a-long-local-password", acme="viewer")  # a local dora came first

    by_directory = login("admin", password_of("admin"), tenant="default")  # uid=admin in LDAP, the local platform admin
    dora_by_directory = login("dora", password_of("dora"), tenant="acme")

    assert (by_directory.status_code, by_directory.json()) == (401, INVALID_CREDENTIALS)
    assert (dora_by_directory.status_code, dora_by_directory.json()) == (401, INVALID_CREDENTIALS)
    assert roles_of("dora") == {"acme": "viewer"}
    assert get_user_model().objects.get(username="admin").is_superuser
    assert login("dora", "a-long-local-password").json()["role"] == "viewer"


def test_a_directory_that_does_not_answer_fails_ldap_logins_only(slapd, settings, login, make_user, nexus_world):
    for name, value in slapd.django_settings(uri="ldap://127.0.0.1:9", timeout_s=2.0).items():
        setattr(settings, name, value)
    make_user("lou", acme="operator")

    assert (login("dora", password_of("dora"), tenant="acme").json()) == INVALID_CREDENTIALS
    assert login("lou", "a-long-password-1").status_code == 200


def test_without_nexus_ldap_uri_there_is_no_ldap(slapd, settings, login, nexus_world):
    assert settings.AUTHENTICATION_BACKENDS == ["django.contrib.auth.backends.ModelBackend"]
    assert settings.NEXUS_LDAP_ROLE_MAP == {}

    response = login("dora", password_of("dora"), tenant="acme")

    assert (response.status_code, response.json()) == (401, INVALID_CREDENTIALS)


def test_the_cli_logs_in_ldap_users_too(ldap_enabled, nexus, bearer):
    import json

    code, out, err = nexus(
        "--tenant=acme", "login", "--username=dora", "--password-stdin", "--json", stdin=password_of("dora") + "\n"
    )

    assert code == 0, err
    pair = json.loads(out)
    assert (pair["tenant"], pair["role"]) == ("acme", "developer")
    assert bearer(pair["access"]).get("/api/v1/workflows/").status_code == 200
