"""The one access layer: which role may do what, checked by services for every channel, failing closed."""

from apps.core.errors import PermissionDenied
from apps.core.principal import Principal

# Roles from least to most powerful: a role may do everything the ones below it may.
ROLE_RANK = {"viewer": 1, "operator": 2, "developer": 3, "admin": 4, "owner": 5}
# Every action a principal can take inside a tenant, and the least role that may take it.
ACTIONS: dict[str, str] = {
    "workflow.read": "viewer",
    "execution.read": "viewer",
    "workflow.create": "developer",
    "workflow.update": "developer",
    "workflow.delete": "developer",
    "workflow.deploy": "developer",
    "workflow.test": "developer",
    "workflow.execute": "operator",
    "execution.cancel": "operator",
    "session.read": "viewer",
    "session.write": "operator",
    "apikey.read": "admin",
    "apikey.create": "admin",
    "apikey.revoke": "admin",
    "member.read": "viewer",
    "member.write": "admin",
    "dataset.read": "viewer",
    "dataset.write": "developer",
    "artifact.read": "viewer",
    "audit.read": "admin",
}
# Actions outside any tenant (users are global; the audit chain spans tenants): platform admins only.
PLATFORM_ACTIONS = frozenset({"user.create", "user.list", "audit.verify", "audit.prune"})


def can(principal: Principal, action: str) -> bool:
    needed = ACTIONS.get(action)
    if needed is None:  # an action nobody registered is nobody's
        return False
    if principal.is_platform_admin:
        return True
    return ROLE_RANK.get(principal.role or "", 0) >= ROLE_RANK[needed]


def outranks(role: str | None, other: str | None) -> bool:
    return ROLE_RANK.get(role or "", 0) > ROLE_RANK.get(other or "", 0)


def require(principal: Principal, action: str, *, tenant_id: int | None) -> None:
    """Raise unless `principal` may take `action` in `tenant_id`.

    A principal bound to another tenant never gets here with that tenant's objects (lookups run in the
    caller's schema, so they answer 404); this guards the role, and the tenant as a second line.
    """
    if not principal.is_platform_admin and (tenant_id is None or principal.tenant_id != tenant_id):
        raise _denied(principal, action, tenant_id=tenant_id, detail="not a member of this tenant")
    if not can(principal, action):
        raise _denied(
            principal, action, tenant_id=tenant_id, detail=f"role '{principal.role}' may not {action.replace('.', ' ')}"
        )


def require_platform_admin(principal: Principal, action: str) -> None:
    """Raise unless `principal` is a platform admin; `action` must be a registered platform action."""
    if action not in PLATFORM_ACTIONS or not principal.is_platform_admin:
        raise _denied(principal, action, tenant_id=None, detail=f"only platform admins may {action.replace('.', ' ')}")


def _denied(principal: Principal, action: str, *, tenant_id: int | None, detail: str) -> PermissionDenied:
    """The refusal to raise, recorded first as `access.denied` in a way that outlives the caller's rollback."""
    from apps.audit.services import audit_denied

    audit_denied(principal=principal, permission=action, tenant_id=tenant_id, reason=detail)
    return PermissionDenied(detail, code="permission_denied")
