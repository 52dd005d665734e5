"""`nexus user`, `nexus member` and `nexus login` in-process: JSON out, errors on stderr with the exit codes."""

import json

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.models import Membership

pytestmark = pytest.mark.django_db


def roles_of(username: str) -> dict[str, str]:
    return dict(Membership.objects.filter(user__username=username).values_list("tenant__slug", "role"))


def test_create_a_user_add_them_and_log_in(nexus, nexus_world, bearer):
    code, out, err = nexus(
        "user",
        "create",
        "carol",
        "--email=carol@example.test",
        "--password-stdin",
        "--json",
        stdin="carols-long-password\n",
    )
    assert code == 0, err
    assert json.loads(out) == {"username": "carol", "email": "carol@example.test", "platform_admin": False}

    code, out, err = nexus("--tenant=acme", "member", "add", "carol", "--role=developer", "--json")
    assert code == 0, err
    assert json.loads(out) == {"username": "carol", "tenant": "acme", "role": "developer"}

    code, out, err = nexus(
        "--tenant=acme",
        "login",
        "--username=carol",
        "--password-stdin",
        "--json",
        stdin="carols-long-password\n",
    )
    assert code == 0, err
    pair = json.loads(out)
    assert set(pair) == {"access", "refresh", "tenant", "role", "expires_in"}
    assert (pair["tenant"], pair["role"]) == ("acme", "developer")
    created = bearer(pair["access"]).post("/api/v1/workflows/", {"slug": "by-carol", "template": "basic"})
    assert created.status_code == 201 and created.json()["created_by"] == "user:carol"


def test_a_generated_password_is_shown_once_and_works(nexus, nexus_world):
    code, out, _ = nexus("user", "create", "gen", "--platform-admin", "--json")
    created = json.loads(out)
    assert code == 0 and created["platform_admin"] is True and len(created["password"]) >= 20
    user = get_user_model().objects.get(username="gen")
    assert user.is_superuser and user.check_password(created["password"])

    code, out, err = nexus(
        "--tenant=globex",
        "login",
        "--username=gen",
        "--password-stdin",
        "--json",
        stdin=created["password"] + "\n",
    )
    assert code == 0, err
    assert (json.loads(out)["tenant"], json.loads(out)["role"]) == ("globex", "owner")


def test_rich_output_for_people(nexus, make_user):
    make_user("ann", acme="developer")
    code, out, _ = nexus("user", "create", "pat")
    assert code == 0 and "user pat created" in out and "not shown again" in out and "{" not in out
    code, out, _ = nexus("--tenant=acme", "user", "list")
    assert code == 0 and "members of acme" in out and "ann" in out and "developer" in out


def test_user_list_for_a_tenant_and_for_everyone(nexus, make_user):
    make_user("ann", acme="developer")
    make_user("sam", acme="viewer", globex="admin")

    code, out, _ = nexus("--tenant=acme", "user", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and listed["tenant"] == "acme"
    assert [(u["username"], u["role"]) for u in listed["users"]] == [("ann", "developer"), ("sam", "viewer")]

    code, out, _ = nexus("user", "list", "--all", "--json")
    everyone = {u["username"]: u for u in json.loads(out)["users"]}
    assert everyone["sam"]["memberships"] == {"acme": "viewer", "globex": "admin"}
    assert everyone["admin"]["platform_admin"] is True


def test_member_remove(nexus, make_user):
    make_user("sam", acme="viewer", globex="admin")

    code, out, err = nexus("--tenant=acme", "member", "remove", "sam", "--json")

    assert code == 0, err
    assert json.loads(out) == {"username": "sam", "tenant": "acme", "role": "viewer", "removed": True}
    assert roles_of("sam") == {"globex": "admin"}
    code, _, err = nexus("--tenant=acme", "member", "remove", "sam")
    assert code == 3 and "not a member of tenant 'acme'" in err


def test_only_platform_admins_create_users_and_list_everyone(nexus, make_user):
    make_user("ada", acme="admin")

    code, out, err = nexus("--tenant=acme", "--as=ada", "user", "create", "eve")
    assert (code, out) == (4, "") and "only platform admins may user create" in err
    code, _, err = nexus("--tenant=acme", "--as=ada", "user", "list", "--all")
    assert code == 4
    assert not get_user_model().objects.filter(username="eve").exists()


def test_members_are_managed_by_admins_up_to_their_own_role(nexus, make_user):
    make_user("ada", acme="admin")
    make_user("dev", acme="developer")
    make_user("own", acme="owner")
    make_user("new")

    code, _, err = nexus("--tenant=acme", "--as=dev", "member", "add", "new", "--role=viewer")
    assert code == 4 and "may not member write" in err
    code, _, err = nexus("--tenant=acme", "--as=ada", "member", "add", "new", "--role=owner")
    assert code == 4 and "role 'admin' may not give a member role 'owner': no role above your own" in err
    code, _, err = nexus("--tenant=acme", "--as=ada", "member", "remove", "own")
    assert code == 4
    code, _, err = nexus("--tenant=acme", "--as=dev", "user", "list", "--json")
    assert code == 0  # viewers and up may see who is in their tenant

    code, _, err = nexus("--tenant=acme", "--as=ada", "member", "add", "new", "--role=admin")
    assert code == 0, err
    assert roles_of("new") == {"acme": "admin"} and roles_of("own") == {"acme": "owner"}


def test_the_last_owner_stays(nexus, make_user):
    make_user("own", acme="owner")

    code, _, err = nexus("--tenant=acme", "member", "remove", "own")
    assert code == 5 and "must keep at least one owner" in err
    code, _, err = nexus("--tenant=acme", "member", "add", "own", "--role=admin")
    assert code == 5
    assert roles_of("own") == {"acme": "owner"}


@pytest.mark.parametrize(
    ("args", "stdin", "exit_code", "message"),
    [
        (["user", "create", "ann"], None, 2, "user already exists"),
        (["user", "create", "weak", "--password-stdin"], "short\n", 2, "password: This password is too short"),
        (["user", "create", "bad name!"], None, 2, "username: Enter a valid username"),
        (["user", "create", "mail", "--email=not-an-email"], None, 2, "email: Enter a valid email address"),
        (["user", "create", "empty", "--password-stdin"], "\n", 2, "no password on standard input"),
        (["member", "add", "ann", "--role=emperor"], None, 2, "invalid role"),
        (["member", "add", "ghost", "--role=viewer"], None, 3, "user 'ghost' does not exist"),
        (["login", "--username=ann", "--password-stdin"], "wrong-password-1\n", 4, "invalid username or password"),
        (["login", "--username=ann", "--password-stdin"], None, 2, "no password on standard input"),
        (["login", "--username=ann"], "", 2, "--password-stdin"),
        (["--tenant=globex", "login", "--username=ann", "--password-stdin"], "a-long-password-1\n", 4, "not a member"),
    ],
)
def test_bad_input_exits_non_zero_with_a_reason_and_changes_nothing(nexus, make_user, args, stdin, exit_code, message):
    make_user("ann", acme="developer")
    users_before = sorted(get_user_model().objects.values_list("username", flat=True))

    code, out, err = nexus("--tenant=acme", *args, stdin=stdin if stdin is not None else "")

    assert code == exit_code, (out, err)
    assert message in err and out == ""
    assert sorted(get_user_model().objects.values_list("username", flat=True)) == users_before
    assert roles_of("ann") == {"acme": "developer"}


def test_json_errors_are_json_on_stderr(nexus, make_user):
    make_user("ann", acme="developer")

    code, out, err = nexus("login", "--username=ann", "--password-stdin", "--json", stdin="nope-nope-nope\n")

    assert code == 4 and out == ""
    assert json.loads(err) == {"error": {"detail": "invalid username or password", "code": "invalid_credentials"}}


def test_user_password_changes_it_and_ends_the_users_tokens(nexus, make_user, bearer, client):
    make_user("pat", acme="developer")
    body = json.dumps({"username": "pat", "password": "a-long-password-1"})
    pair = client.post("/api/v1/auth/token/", body, content_type="application/json").json()

    code, out, err = nexus("user", "password", "pat", "--password-stdin", "--json", stdin="pats-new-long-password\n")

    assert code == 0, err
    assert json.loads(out) == {"username": "pat", "password_changed": True}
    assert get_user_model().objects.get(username="pat").check_password("pats-new-long-password")
    assert bearer(pair["access"]).get("/api/v1/workflows/").status_code == 401
    refreshed = client.post("/api/v1/auth/refresh/", json.dumps({"refresh": pair["refresh"]}), content_type="application/json")
    assert refreshed.status_code == 401


def test_user_password_is_for_platform_admins_and_names_bad_input(nexus, make_user):
    make_user("ada", acme="admin")
    make_user("pat", acme="developer")
    before = get_user_model().objects.get(username="pat").password

    code, out, err = nexus("--tenant=acme", "--as=ada", "user", "password", "pat")
    assert (code, out) == (4, "") and "only platform admins may user update" in err
    code, out, err = nexus("user", "password", "pat", "--password-stdin", stdin="short\n")
    assert (code, out) == (2, "") and "password: This password is too short" in err
    code, out, err = nexus("user", "password", "ghost")
    assert (code, out) == (3, "") and "user 'ghost' does not exist" in err
    assert get_user_model().objects.get(username="pat").password == before
