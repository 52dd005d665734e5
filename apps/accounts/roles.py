"""The role vocabulary: the roles a member, key or application holds in a tenant, from least to most powerful.

Read by the access layer (apps/accounts/access.py) and by the login settings (apps/accounts/auth_config.py,
imported by the settings module): so it imports nothing.
"""

# From least to most powerful: a role may do everything the ones before it may.
ROLES: tuple[str, ...] = ("viewer", "operator", "developer", "admin", "owner")
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES, start=1)}


def outranks(role: str | None, other: str | None) -> bool:
    """Whether `role` is above `other` (no role, or an unknown one, is below every role)."""
    return ROLE_RANK.get(role or "", 0) > ROLE_RANK.get(other or "", 0)
