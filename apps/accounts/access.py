"""The one access layer: which role may do what, checked by services for every channel, failing closed."""

from apps.accounts.roles import ROLE_RANK, outranks
from apps.accounts.scopes import SCOPES
from apps.audit.recorder import audit_denied
from apps.core.errors import PermissionDenied, ValidationFailed
from apps.core.principal import Principal
from apps.tenants.guard import require_schema

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
    "artifact.create": "operator",
    "mail.send": "operator",
    # The outbox holds whole messages (recipients, bodies): those who may send mail may read what was sent.
    "mail.read": "operator",
    "audit.read": "admin",
    "app.read": "admin",
    "app.write": "admin",
}
# action -> the scopes granting it, computed once: can() is on every request's path.
ACTION_SCOPES: dict[str, frozenset[str]] = {
    action: frozenset(scope for scope, (_, actions) in SCOPES.items() if action in actions) for action in ACTIONS
}
# Actions outside any tenant (users are global; the audit chain spans tenants; tenants themselves): platform
# admins only. Each with what its refusal says a platform admin alone may do.
PLATFORM_ACTIONS: dict[str, str] = {
    "user.create": "user create",
    "user.update": "user update",
    "user.list": "user list",
    "audit.verify": "audit verify",
    "audit.prune": "audit prune",
    "tenant.create": "create tenants",
    "tenant.update": "update tenants",
    "tenant.suspend": "suspend tenants",
    "tenant.resume": "resume tenants",
    "tenant.delete": "delete tenants",
    "tenant.list": "list tenants",
    "metrics.read": "read metrics",
}


def can(principal: Principal, action: str) -> bool:
    needed = ACTIONS.get(action)
    if needed is None:  # an action nobody registered is nobody's
        return False
    # An API application's scopes narrow its role: an action no scope of it grants is refused, whatever the role.
    if principal.scopes is not None and principal.scopes.isdisjoint(ACTION_SCOPES[action]):
        return False
    if principal.is_platform_admin:
        return True
    return ROLE_RANK.get(principal.role or "", 0) >= ROLE_RANK[needed]


def require_role_at_most(principal: Principal, role: str | None, *, action: str, doing: str) -> None:
    """Raise unless `role` is at most `principal`'s own: nobody hands out, changes or takes away a role above
    their own, whether on an API key, a member or an API application, by any channel. `doing` completes the
    refusal: "role 'admin' may not {doing} 'owner'". Platform admins and the system (the CLI without `--as`)
    are exempt: they hold every role.
    """
    if principal.is_platform_admin or principal.kind == "system":
        return
    if outranks(role, principal.role):
        raise _denied(
            principal,
            action,
            tenant_id=principal.tenant_id,
            detail=f"role '{principal.role}' may not {doing} '{role}': no role above your own",
        )


def require(principal: Principal, action: str, *, tenant_id: int | None) -> None:
    """Raise unless `principal` may take `action` in `tenant_id`.

    A principal bound to another tenant never gets here with that tenant's objects (lookups run in the
    caller's schema, so they answer 404); this guards the role, and the tenant as a second line, and that the
    connection is in that tenant's schema (apps/tenants/guard.py).
    """
    require_schema(tenant_id)
    if principal is None:  # a door that lost its caller; paths without one are named `*_for_run`
        raise _denied(principal, action, tenant_id=tenant_id, detail="no principal")
    if not principal.is_platform_admin and (tenant_id is None or principal.tenant_id != tenant_id):
        raise _denied(principal, action, tenant_id=tenant_id, detail="not a member of this tenant")
    if not can(principal, action):
        raise _denied(principal, action, tenant_id=tenant_id, detail=_refusal(principal, action))


def _refusal(principal: Principal, action: str) -> str:
    verb = action.replace(".", " ")
    if principal.scopes is not None and principal.scopes.isdisjoint(ACTION_SCOPES.get(action, ())):
        granting = " or ".join(sorted(ACTION_SCOPES.get(action, ()))) or "none"
        return f"the application's scopes may not {verb} (it needs scope {granting})"
    return f"role '{principal.role}' may not {verb}"


def scopes_check(scopes) -> list[str]:
    """`scopes` as a sorted list without duplicates, or ValidationFailed naming the unknown ones."""
    if not isinstance(scopes, (list, tuple)) or not all(isinstance(scope, str) for scope in scopes):
        raise ValidationFailed("invalid scopes", fields={"scopes": "a list of scope names"})
    unknown = sorted({scope for scope in scopes if scope not in SCOPES})
    if unknown:
        raise ValidationFailed(
            "invalid scopes", fields={"scopes": f"unknown scope {', '.join(unknown)}; one of {', '.join(SCOPES)}"}
        )
    return sorted(set(scopes))


def require_platform_admin(principal: Principal | None, action: str) -> None:
    """Raise unless `principal` is a platform admin; `action` must be a registered platform action (an
    unregistered one is nobody's). No principal is refused too: every door passes the one it authenticated."""
    if action not in PLATFORM_ACTIONS or principal is None or not principal.is_platform_admin:
        doing = PLATFORM_ACTIONS.get(action, action.replace(".", " "))
        raise _denied(principal, action, tenant_id=None, detail=f"only platform admins may {doing}")


def require_metrics_read(principal: Principal) -> None:
    """Raise unless `principal` may read /metrics (`metrics.read`, a platform action): the figures span every
    tenant, so a tenant's credential is refused whatever its role. The refusal is recorded in the caller's
    tenant, where its admins look; the scrape token and loopback rules are apps/ops/selectors.py's."""
    if not principal.is_platform_admin:
        detail = "metrics cover every tenant: only platform admins and the metrics token may read them"
        raise _denied(principal, "metrics.read", tenant_id=principal.tenant_id, detail=detail)


def _denied(principal: Principal | None, action: str, *, tenant_id: int | None, detail: str) -> PermissionDenied:
    """The refusal to raise, recorded first as `access.denied` in a way that outlives the caller's rollback."""
    audit_denied(principal=principal, permission=action, tenant_id=tenant_id, reason=detail)
    return PermissionDenied(detail, code="permission_denied")


# Reading an event needs what reading its entity needs (the part of its type before the dot): whoever may not
# list members may not hear `member.removed` either, on a WebSocket or through a webhook. Types no service
# publishes (a workflow's `notify` node names its own, e.g. `report.ready`) are data of the run that published
# them, so they need what reading runs needs.
EVENT_READ_ACTIONS: dict[str, str] = {
    "execution": "execution.read",
    "workflow": "workflow.read",
    "deployment": "workflow.read",
    "schedule": "workflow.read",
    "trigger": "workflow.read",
    "session": "session.read",
    "dataset": "dataset.read",
    "artifact": "artifact.read",
    "member": "member.read",
    "apikey": "apikey.read",
    "app": "app.read",
    "webhook": "app.read",
    "oauth": "app.read",
    "audit": "audit.read",
    "access": "audit.read",
    "tenant": "audit.read",
    "user": "audit.read",
}
EVENT_READ_DEFAULT = "execution.read"


def event_read_action(event_type: str) -> str:
    """The action whose holders may read events of `event_type` (an exact type or `<entity>.*`)."""
    return EVENT_READ_ACTIONS.get(event_type.split(".", 1)[0], EVENT_READ_DEFAULT)


def can_read_event(principal: Principal, event_type: str) -> bool:
    """May `principal` (its role, narrowed by an application's scopes) receive events of `event_type`?"""
    return can(principal, event_read_action(event_type))


def event_read_refusal(principal: Principal, event_type: str) -> str | None:
    """None when `principal` may read events of `event_type`, else why not, naming the scope or role it needs."""
    action = event_read_action(event_type)
    if can(principal, action):
        return None
    if principal.scopes is not None and principal.scopes.isdisjoint(ACTION_SCOPES[action]):
        return f"{event_type} needs scope {' or '.join(sorted(ACTION_SCOPES[action]))}"
    return f"{event_type} needs role {ACTIONS[action]} or above (the role is '{principal.role}')"
