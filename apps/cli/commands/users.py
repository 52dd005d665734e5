"""`nexus user create|password|list`, `nexus member add|remove`, `nexus login`."""

import getpass
import secrets
import sys

from rich.panel import Panel

from apps.accounts.models import Role
from apps.accounts.selectors import member_list, user_list
from apps.accounts.services import member_add, member_remove, user_login, user_password_set, user_register
from apps.cli.context import table
from apps.cli.verbs import leaf
from apps.core.errors import ValidationFailed


def register(verbs) -> None:
    users = verbs.add_parser("user", help="manage users (global: one login across tenants)")
    user_verbs = users.add_subparsers(dest="user_verb", metavar="VERB", required=True)
    create = leaf(user_verbs, "create", create_user, "create a local user (platform admins)")
    create.add_argument("username")
    create.add_argument("--email", default="")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.add_argument("--platform-admin", action="store_true", help="may act in every tenant, as an owner")
    password = leaf(
        user_verbs, "password", set_password, "set a local user's password (platform admins); ends every token they hold"
    )
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    listing = leaf(user_verbs, "list", list_users, "list the tenant's members, or every user with --all")
    listing.add_argument("--all", dest="all_users", action="store_true", help="every user and their tenants (platform admins)")

    members = verbs.add_parser("member", help="manage who belongs to the tenant, with which role")
    member_verbs = members.add_subparsers(dest="member_verb", metavar="VERB", required=True)
    add = leaf(member_verbs, "add", add_member, "add a user to the tenant, or change their role")
    add.add_argument("username")
    add.add_argument("--role", required=True, help=f"one of {', '.join(Role.values)}")
    leaf(member_verbs, "remove", remove_member, "remove a user from the tenant").add_argument("username")

    login = leaf(verbs, "login", log_in, "log in as a user and print a JWT pair for the tenant")
    login.add_argument("--username", required=True)
    login.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def _password_from_stdin() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ValidationFailed("no password on standard input", fields={"password": "required"})
    return password


def create_user(ctx, options) -> None:
    generated = not options["password_stdin"]
    password = secrets.token_urlsafe(18) if generated else _password_from_stdin()
    user = user_register(
        principal=ctx.principal,
        username=options["username"],
        password=password,
        email=options["email"],
        is_platform_admin=options["platform_admin"],
    )
    data = {"username": user.username, "email": user.email, "platform_admin": user.is_superuser}
    if generated:
        data["password"] = password

    def render(out, d):
        lines = [f"user {d['username']} created" + (" (platform admin)" if d["platform_admin"] else "")]
        if generated:
            lines.append(f"\npassword: {d['password']}\n\nStore it now: it is not shown again.")
        out.print(Panel("\n".join(lines), title="user"))

    ctx.emit(data, render)


def set_password(ctx, options) -> None:
    generated = not options["password_stdin"]
    password = secrets.token_urlsafe(18) if generated else _password_from_stdin()
    user = user_password_set(principal=ctx.principal, username=options["username"], password=password)
    data = {"username": user.username, "password_changed": True}
    if generated:
        data["password"] = password

    def render(out, d):
        lines = [f"password of {d['username']} changed; their earlier tokens no longer work"]
        if generated:
            lines.append(f"\npassword: {d['password']}\n\nStore it now: it is not shown again.")
        out.print(Panel("\n".join(lines), title="user"))

    ctx.emit(data, render)


def list_users(ctx, options) -> None:
    if options["all_users"]:
        users = user_list(principal=ctx.principal)
        data = {
            "users": [
                {
                    "username": u.username,
                    "email": u.email,
                    "platform_admin": u.is_superuser,
                    "active": u.is_active,
                    "memberships": {m.tenant.slug: m.role for m in u.memberships.all()},
                }
                for u in users
            ]
        }
        ctx.emit(
            data,
            lambda out, d: out.print(
                table(
                    "users",
                    ["username", "email", "platform admin", "active", "tenants"],
                    [
                        [
                            u["username"],
                            u["email"],
                            "yes" if u["platform_admin"] else "",
                            "yes" if u["active"] else "no",
                            ", ".join(f"{slug} ({role})" for slug, role in u["memberships"].items()),
                        ]
                        for u in d["users"]
                    ],
                )
            ),
        )
        return
    memberships = member_list(principal=ctx.principal, tenant=ctx.tenant)
    data = {
        "tenant": ctx.tenant.slug,
        "users": [
            {
                "username": m.user.username,
                "email": m.user.email,
                "role": m.role,
                "platform_admin": m.user.is_superuser,
                "active": m.user.is_active,
            }
            for m in memberships
        ],
    }
    ctx.emit(
        data,
        lambda out, d: out.print(
            table(
                f"members of {d['tenant']}",
                ["username", "role", "email", "active"],
                [[u["username"], u["role"], u["email"], "yes" if u["active"] else "no"] for u in d["users"]],
            )
        ),
    )


def add_member(ctx, options) -> None:
    membership = member_add(principal=ctx.principal, tenant=ctx.tenant, username=options["username"], role=options["role"])
    data = {"username": options["username"], "tenant": ctx.tenant.slug, "role": membership.role}
    ctx.emit(data, lambda out, d: out.print(f"{d['username']} is {d['role']} in {d['tenant']}"))


def remove_member(ctx, options) -> None:
    removed = member_remove(principal=ctx.principal, tenant=ctx.tenant, username=options["username"])
    data = {"username": options["username"], "tenant": ctx.tenant.slug, "role": removed.role, "removed": True}
    ctx.emit(data, lambda out, d: out.print(f"{d['username']} ({d['role']}) removed from {d['tenant']}"))


def log_in(ctx, options) -> None:
    if options["password_stdin"]:
        password = _password_from_stdin()
    elif sys.stdin.isatty():
        password = getpass.getpass(f"password for {options['username']}: ")
    else:
        raise ValidationFailed("pass the password with --password-stdin", fields={"password": "use --password-stdin"})
    pair = user_login(username=options["username"], password=password, tenant_slug=ctx.tenant_slug, channel="cli")
    ctx.emit(
        pair.as_dict(),
        lambda out, d: out.print(
            Panel(
                f"access  {d['access']}\n\nrefresh {d['refresh']}\n\n"
                f"role {d['role']} in tenant {d['tenant']}; the access token expires in {d['expires_in']} s.",
                title=f"logged in as {options['username']}",
            )
        ),
    )
