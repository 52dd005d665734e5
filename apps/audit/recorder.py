"""Audit recording: build a row and insert it in the caller's transaction, or durably for denials.

Everything above it calls this module (access checks, every service), so it imports nothing above the audit
models, the audit context and apps/core: no access policy, no tenant provisioning. Sealing, verifying and
pruning the chain live above it, in apps/audit/services.py.

A service calls `audit_record` inside its `transaction.atomic()`, after its own writes: the row commits or rolls
back with the action, and the row's `seq` is taken as late as possible, so rows reach the sealer nearly in order.
Denials and failed logins must outlive the transaction that refused them (the caller usually rolls back), so they
go through `durable=True`: straight on the connection when no transaction is open (what every service's access
check sees: they check before opening one), otherwise on a short-lived connection of their own that commits at once.
"""

import logging
import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone
from django_tenants.utils import get_tenant_model

from apps.audit.context import current_context, valid_ip
from apps.audit.models import ActorType, AuditRow, Outcome, audit_insert
from apps.core.errors import ValidationFailed
from apps.core.ids import new_id
from apps.core.principal import Principal

logger = logging.getLogger("nexus.audit")

ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
# Principal kinds and actor prefixes -> actor type; an API application (`app:app_…`) acts with a machine credential.
ACTOR_TYPES = {
    "user": ActorType.USER,
    "api_key": ActorType.API_KEY,
    "apikey": ActorType.API_KEY,
    "application": ActorType.API_KEY,
    "app": ActorType.API_KEY,
    "system": ActorType.SYSTEM,
}
# A run's state, and the action and outcome its audit row carries: the event types of the events log
# (apps/runs/services.py), with the exact status in the row's details.
EXECUTION_ACTIONS = {
    "queued": ("execution.queued", Outcome.SUCCESS),
    "completed": ("execution.completed", Outcome.SUCCESS),
    "completed_with_recovery": ("execution.completed", Outcome.SUCCESS),
    "failed": ("execution.failed", Outcome.ERROR),
    "timed_out": ("execution.failed", Outcome.ERROR),
    "cancelled": ("execution.cancelled", Outcome.SUCCESS),
}
_public_tenant_id: int | None = None


def public_tenant_id() -> int:
    """The public tenant's id: the tenant of rows that belong to no tenant. Only read here: installing the
    platform (apps/ops/bootstrap.py) creates it first, and recording never creates tenants."""
    global _public_tenant_id
    if _public_tenant_id is None:
        # The tenant model by its setting (django-tenants' own lookup): importing apps.tenants would put
        # tenant provisioning under the recorder.
        found = get_tenant_model().objects.filter(schema_name=settings.PUBLIC_SCHEMA_NAME).values_list("pk", flat=True).first()
        if found is None:
            raise ImproperlyConfigured(
                f"the public tenant (schema '{settings.PUBLIC_SCHEMA_NAME}') does not exist: install the platform"
                " first (`nexus setup`, which runs apps/ops/bootstrap.py), then record audit rows"
            )
        _public_tenant_id = found
    return _public_tenant_id


def actor_type_for(actor: str) -> str:
    """`user:alice` -> user, `apikey:key_…` -> api_key; anything else (`cli:…`, `system:…`) acts as the system."""
    return ACTOR_TYPES.get(actor.split(":", 1)[0], ActorType.SYSTEM)


def _text(value, limit: int) -> str:
    """Text PostgreSQL will take: no NULs, no lone surrogates (user input reaches logins' usernames)."""
    text = str(value or "").replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")[:limit]


def json_safe(value):
    """`value` with every string made storable (see `_text`), for details that carry what a client typed."""
    if isinstance(value, str):
        return _text(value, 1000)
    if isinstance(value, dict):
        return {_text(key, 200): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def audit_event(
    *,
    action: str,
    tenant_id: int | None,
    principal: Principal | None = None,
    actor: str | None = None,
    actor_type: str | None = None,
    target: str = "",
    outcome: str = Outcome.SUCCESS,
    details: dict | None = None,
    channel: str | None = None,
    ip: str | None = None,
    ts=None,
) -> AuditRow:
    """An unsaved row, labelled from the current audit context (apps/audit/context.py) where not given."""
    if not ACTION_RE.match(action):
        raise ValidationFailed("invalid audit action", fields={"action": "<entity>.<past_verb>"})
    context = current_context()
    if actor is None:
        actor = principal.actor if principal is not None else "system"
    if actor_type is None:
        actor_type = ACTOR_TYPES.get(principal.kind, ActorType.SYSTEM) if principal is not None else actor_type_for(actor)
    if tenant_id is None:
        tenant_id = principal.tenant_id if principal is not None and principal.tenant_id is not None else public_tenant_id()
    return AuditRow(
        id=new_id("aud"),
        ts=ts or timezone.now(),
        tenant_id=tenant_id,
        actor=_text(actor, 200),
        actor_type=actor_type,
        channel=channel or context.channel,
        action=action,
        target=_text(target, 200),
        outcome=outcome,
        ip=valid_ip(ip) if ip is not None else context.ip,
        request_id=context.request_id,
        details=details or {},
    )


def audit_save(event: AuditRow, *, durable: bool = False) -> AuditRow:
    """Insert `event` in the caller's transaction; `durable=True`: committed now, whatever the caller does next."""
    if not durable or not connection.in_atomic_block:
        audit_insert(event, conn=connection)
        return event
    own = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        audit_insert(event, conn=own)  # autocommit
    finally:
        own.close()
    return event


def audit_record(*, action: str, tenant_id: int | None, durable: bool = False, **fields) -> AuditRow:
    """Record one audit row; see `audit_event` for the fields. Call it inside the action's transaction."""
    return audit_save(audit_event(action=action, tenant_id=tenant_id, **fields), durable=durable)


def audit_denied(*, principal: Principal | None, permission: str, tenant_id: int | None, reason: str) -> AuditRow | None:
    """An `access.denied` row that survives the refused call's rollback. Never raises: failing to record a
    denial must not turn the 403 into a 500 (it is logged instead)."""
    try:
        return audit_record(
            action="access.denied",
            tenant_id=tenant_id,
            principal=principal,
            actor=None if principal is not None else "anonymous",
            actor_type=None if principal is not None else ActorType.ANONYMOUS,
            target=permission,
            outcome=Outcome.DENIED,
            details={"permission": permission, "reason": reason},
            durable=True,
        )
    except Exception:
        logger.exception("could not record access.denied for %s (%s)", principal, permission)
        return None


def execution_audit_event(execution, *, tenant_id: int, principal: Principal | None = None, **details) -> AuditRow:
    """The row for a run's state (`queued`, or the final one): one per run when it finishes, plus one when it is
    queued for a worker. The actor is whoever started it, the channel the one it came through."""
    action, outcome = EXECUTION_ACTIONS[execution.status]
    data = {
        "workflow": execution.workflow_slug,
        "workflow_id": execution.workflow_id,
        "version": execution.version_number,
        "environment": execution.environment,
        "status": execution.status,
    }
    if execution.status != "queued":
        data["duration_ms"] = execution.duration_ms
        data["inline"] = execution.inline
    if execution.error:
        data["error_code"] = execution.error.get("code")
    if execution.parent_id:
        data["parent_id"] = execution.parent_id
    if execution.session_id:
        data["session"] = execution.session_id
    data.update(details)
    return audit_event(
        action=action,
        tenant_id=tenant_id,
        principal=principal,
        actor=None if principal is not None else execution.actor,
        target=execution.id,
        outcome=outcome,
        details=data,
        channel=execution.channel,
        ts=execution.finished_at if execution.status != "queued" else execution.created_at,
    )
