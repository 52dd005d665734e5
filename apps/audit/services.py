"""Audit chain upkeep: seal, verify and prune, above the recorder (apps/audit/recorder.py) that everything calls."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.access import require_platform_admin
from apps.audit import chain
from apps.audit.recorder import audit_record, public_tenant_id
from apps.core.errors import ValidationFailed
from apps.core.principal import Principal


def audit_seal(*, wait: bool = True) -> int:
    """Seal the rows committed so far into the hash chain (apps/audit/chain.py). No principal: it changes nothing
    anyone can see but the hash columns, and runs from beat and before every read of the chain."""
    return chain.seal(wait=wait)


def audit_verify(*, principal: Principal) -> chain.Verification:
    require_platform_admin(principal, "audit.verify")
    return chain.verify()


def audit_prune(*, principal: Principal, retention_days: int | None = None, now=None) -> dict:
    """Delete sealed rows older than the retention (NEXUS_AUDIT_RETENTION_DAYS), for a platform admin, and record
    `audit.pruned` with the boundary `verify` anchors on, in one transaction."""
    require_platform_admin(principal, "audit.prune")
    return _prune(principal=principal, retention_days=retention_days, now=now)


def audit_prune_for_schedule(*, retention_days: int | None = None, now=None) -> dict:
    """`audit_prune` without a principal, for the scheduled task: it acts as the platform (`system:retention`)."""
    return _prune(principal=None, retention_days=retention_days, now=now)


def _prune(*, principal: Principal | None, retention_days: int | None, now) -> dict:
    days = settings.NEXUS_AUDIT_RETENTION_DAYS if retention_days is None else retention_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValidationFailed("invalid retention", fields={"retention_days": "a whole number of days, at least 1"})
    cutoff = (now or timezone.now()) - timedelta(days=days)
    with transaction.atomic():
        result = chain.prune(cutoff=cutoff)
        if result.deleted:
            audit_record(
                action="audit.pruned",
                tenant_id=public_tenant_id(),
                principal=principal,
                actor=None if principal is not None else "system:retention",
                target="audit",
                details={
                    "deleted": result.deleted,
                    "retention_days": days,
                    "cutoff": cutoff.isoformat(),
                    "anchor": result.anchor,
                },
            )
    return {"deleted": result.deleted, "retention_days": days, "cutoff": cutoff.isoformat(), "anchor": result.anchor}
