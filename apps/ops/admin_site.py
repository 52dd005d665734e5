"""The admin site at /admin/: its logins count against the failed-login throttle and are audited, and every
addition, change and deletion made through it is audited, as on every other channel.

The throttle is the one of POST /api/v1/auth/token/ (apps/ratelimit): the same per-username and per-client limits
and counters, so an attacker gets no extra guesses by switching doors; it fails closed like that one (503 while
it cannot be checked). Edits: every ModelAdmin registered on this site is given AuditedModelAdmin's log methods,
which write the audit row next to Django's own LogEntry, inside the admin's transaction.
"""

import math

from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse

from apps.accounts.models import LoginOutcome
from apps.accounts.services import login_attempted
from apps.audit.context import current_context
from apps.audit.recorder import audit_record, json_safe
from apps.ratelimit.limiter import limiter
from apps.ratelimit.policy import attempt_limits, refusal

CHANNEL = "admin"


def _plain(status: int, text: str, retry_after: int) -> HttpResponse:
    response = HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(retry_after)
    return response


class AuditedModelAdmin(admin.ModelAdmin):
    """Mixed into every registered ModelAdmin (NexusAdminSite.register): one `admin_object.*` row per object."""

    def _audit(self, request, obj, *, action: str, details: dict) -> None:
        opts = obj._meta
        audit_record(
            action=action,
            tenant_id=None,  # the admin edits platform tables: the public tenant's log
            actor=f"user:{request.user.get_username()}",
            actor_type="user",
            target=f"{opts.label_lower}:{obj.pk}"[:200],
            # Not str(obj): some models' text is a secret (oauth2_provider's tokens), and this row is kept for good.
            details=json_safe({"model": opts.label_lower, "object_id": str(obj.pk), **details}),
            channel=CHANNEL,
        )

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self._audit(request, obj, action="admin_object.added", details={"change": message})
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        self._audit(request, obj, action="admin_object.changed", details={"change": message})
        return entry

    def log_deletions(self, request, queryset):
        objects = list(queryset)  # called before the deletion: read them while they exist
        entries = super().log_deletions(request, objects)
        for obj in objects:
            self._audit(request, obj, action="admin_object.deleted", details={})
        return entries


class NexusAdminSite(admin.AdminSite):
    site_header = "Nexus administration"
    site_title = "Nexus admin"

    def register(self, model_or_iterable, admin_class=None, **options):
        base = admin_class or admin.ModelAdmin
        if not issubclass(base, AuditedModelAdmin):
            base = type(base.__name__, (AuditedModelAdmin, base), {"__module__": base.__module__})
        super().register(model_or_iterable, base, **options)

    def login(self, request, extra_context=None):
        if request.method != "POST":
            return super().login(request, extra_context)
        username = request.POST.get("username", "")
        limits = attempt_limits(scope="login", account=username or None, ip=current_context().ip)
        decision = limiter().check(limits)
        if decision is None:
            retry_after = max(1, math.ceil(settings.NEXUS_RATE_LIMIT_RETRY_S))
            return _plain(
                503, f"Logins are paused: the failed-login throttle cannot be checked; retry in {retry_after} s.", retry_after
            )
        if not decision.allowed:
            return _plain(429, refusal(decision).detail, decision.retry_after_s)
        response = super().login(request, extra_context)
        succeeded = response.status_code in (301, 302) and request.user.is_authenticated
        if succeeded:
            limiter().refund(limits)
        login_attempted(
            username=request.user.get_username() if succeeded else username,
            tenant_slug=None,
            outcome=LoginOutcome.SUCCESS if succeeded else LoginOutcome.FAILURE,
            ip=current_context().ip,
            reason="" if succeeded else "invalid credentials, or not staff",
            channel=CHANNEL,
        )
        return response
