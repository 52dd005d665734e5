"""Audit reads: a tenant's rows for its admins, every tenant's rows for platform admins (`*_all_tenants` by scope)."""

from datetime import UTC, datetime, time

from django.utils.dateparse import parse_date, parse_datetime

from apps.accounts.access import require
from apps.audit.chain import seal
from apps.audit.models import AuditEvent
from apps.core.errors import NotFound, ValidationFailed
from apps.core.ids import has_prefix
from apps.core.principal import Principal
from apps.tenants.models import Tenant

MAX_LIMIT = 500


def _since_bound(since: str, scope) -> dict:
    """`since` as a filter: after an `aud_…` row (a cursor), or at/after an ISO date or time (UTC when naive)."""
    if has_prefix(since, "aud"):
        seq = scope.filter(id=since).values_list("seq", flat=True).first()
        if seq is None:  # another tenant's row is no cursor for this caller either
            raise NotFound("unknown audit event", fields={"since": f"no audit event '{since}'"})
        return {"seq__gt": seq}
    try:  # a well-formed but impossible date (2026-02-30) raises
        moment = parse_datetime(since)
        if moment is None:
            day = parse_date(since)
            moment = datetime.combine(day, time.min) if day is not None else None
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationFailed("invalid since", fields={"since": "an ISO 8601 date or time, or an aud_… id"})
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return {"ts__gte": moment}


def audit_list(
    *,
    principal: Principal,
    tenant_id: int,
    tenant_slug: str | None = None,
    since: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """Rows of the caller's tenant; a platform admin's reach every tenant, or the one `tenant_slug` names.

    Without `since`: the newest `limit` rows, newest first. With `since`: the first `limit` rows after it, oldest
    first, so the last id is the next cursor. `action` matches exactly, or by entity with `workflow.*`.
    """
    require(principal, "audit.read", tenant_id=tenant_id)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit out of range", fields={"limit": f"between 1 and {MAX_LIMIT}"})
    scope = AuditEvent.objects.all()
    if tenant_slug:
        wanted = Tenant.objects.filter(slug=tenant_slug).values_list("pk", flat=True).first()
        if wanted is None or (not principal.is_platform_admin and wanted != tenant_id):
            raise NotFound(f"tenant '{tenant_slug}' does not exist", code="tenant_not_found")
        scope = scope.filter(tenant_id=wanted)
    elif not principal.is_platform_admin:
        scope = scope.filter(tenant_id=tenant_id)
    seal(wait=False)  # so what is listed shows its place in the chain; a sealer already at work is left to it
    rows = scope
    if action:
        rows = rows.filter(action__startswith=action[:-1]) if action.endswith(".*") else rows.filter(action=action)
    if actor:
        rows = rows.filter(actor=actor)
    rows = rows.filter(**_since_bound(since, scope)).order_by("seq") if since else rows.order_by("-seq")
    return list(rows[:limit])


def tenant_slugs(tenant_ids) -> dict[int, str]:
    """{tenant id: slug} for rendering; a deleted tenant's rows keep their id and get no slug."""
    return dict(Tenant.objects.filter(pk__in=set(tenant_ids)).values_list("pk", "slug"))
