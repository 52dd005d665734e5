"""The role vocabulary (apps/accounts/roles.py): the roles members and keys store, ranked."""

from apps.accounts.models import Role
from apps.accounts.roles import ROLE_RANK, ROLES, outranks


def test_the_ranked_roles_are_the_stored_roles():
    assert sorted(ROLES) == sorted(Role.values)
    assert [ROLE_RANK[role] for role in ROLES] == [1, 2, 3, 4, 5]


def test_outranks_is_strict_and_no_role_is_below_every_role():
    assert outranks("owner", "admin") and outranks("viewer", None) and outranks("viewer", "no-such-role")
    assert not outranks("admin", "admin") and not outranks("operator", "developer") and not outranks(None, "viewer")
