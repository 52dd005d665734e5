"""Writes of API applications: register, update, rotate and revoke their credentials; record OAuth2 token
issuance, refusal and revocation.

An application is three credentials bound to one tenant, under one role narrowed by scopes: an `nxk_` API key
(accounts.ApiKey, only its hash stored), a django-oauth-toolkit confidential client for the client-credentials
grant (the toolkit stores only a hash of the secret) and a webhook signing secret (derived, never stored:
apps/integrations/secrets.py). Raw secrets leave a service once, in its return value.

Nobody hands out more than they hold: the role given to an application is at most the caller's, a caller
with scopes (an application registering another) grants at most its own scopes, and only a principal whose
role is at least the application's may change, rotate or revoke it (rotation hands out its credentials).
"""

import re
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model

from apps.accounts.access import event_read_refusal, require, require_role_at_most, scopes_check
from apps.accounts.models import ApiKey, Role
from apps.accounts.selectors import hash_key
from apps.accounts.services import apikey_issue
from apps.audit.models import Outcome
from apps.audit.recorder import audit_denied, audit_record, json_safe
from apps.core.cache import cache_forget
from apps.core.errors import Conflict, PermissionDenied, ValidationFailed
from apps.core.ids import new_id
from apps.core.locks import delivery_lock_key
from apps.core.principal import Principal
from apps.events.access_notices import access_changed, access_ended
from apps.integrations.delivery import deliveries_enqueue, webhook_deliveries_fail
from apps.integrations.models import Application, DeliveryStatus, WebhookDelivery
from apps.integrations.secrets import new_salt, webhook_secret
from apps.integrations.selectors import DELIVERY_ID_RE, WRITE_ACTION, app_access, delivery_application, delivery_missing
from apps.integrations.urls_guard import validate_webhook_url
from apps.tenants.models import Tenant

MAX_NAME = 200
MAX_EVENTS = 100
MAX_RATE_LIMIT = 1_000_000
CREDENTIALS = ("api_key", "client_secret", "webhook_secret")
EVENT_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*\.(\*|[a-z][a-z0-9_]*))$")
_UNSET: Any = object()


# ------------------------------------------------------------------------------------------ validation


def _name(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("invalid application", fields={"name": "required"})
    value = value.strip()
    if len(value) > MAX_NAME:
        raise ValidationFailed("invalid application", fields={"name": f"at most {MAX_NAME} characters"})
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValidationFailed("invalid application", fields={"name": "must not contain control characters"})
    return value


def _webhook_url(value) -> str:
    if value is None or value == "":
        return ""
    return validate_webhook_url(value, field="webhook_url")


def _webhook_events(value, *, webhook_url: str) -> list[str]:
    """Subscribed event types (`*`, `<entity>.*`, `<entity>.<verb>`) in the order given, without duplicates;
    None: everything (`*`) when there is a URL to send to, else nothing."""
    if value is None:
        return ["*"] if webhook_url else []
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise ValidationFailed("invalid application", fields={"webhook_events": "a list of event types"})
    if len(value) > MAX_EVENTS:
        raise ValidationFailed("invalid application", fields={"webhook_events": f"at most {MAX_EVENTS} event types"})
    bad = [item for item in value if not EVENT_PATTERN.match(item)]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:5])
        raise ValidationFailed(
            "invalid application", fields={"webhook_events": f"not an event type: {shown}; use *, <entity>.* or <entity>.<verb>"}
        )
    return list(dict.fromkeys(value))


def _webhook_events_readable(events: list[str], *, tenant: Tenant, role: str, scopes: list[str]) -> None:
    """Refuse a subscription to events the application could not read (its role, narrowed by its scopes):
    `*` stands for every event it may read, and is filtered per event at delivery (apps/integrations/subscriptions.py)."""
    reader = Principal(
        kind="application",
        actor="app:new",
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        role=role,
        scopes=frozenset(scopes) or None,
    )
    refusals = [reason for pattern in events if pattern != "*" and (reason := event_read_refusal(reader, pattern))]
    if refusals:
        raise ValidationFailed(
            "invalid application", fields={"webhook_events": f"the application may not read these events: {'; '.join(refusals)}"}
        )


def _rate_limit(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RATE_LIMIT:
        raise ValidationFailed(
            "invalid application",
            fields={"rate_limit_per_minute": f"a whole number from 1 to {MAX_RATE_LIMIT}, or null for the plan's default"},
        )
    return value


def _role(principal: Principal, value) -> str:
    if value not in Role.values:
        raise ValidationFailed("invalid application", fields={"role": f"one of {', '.join(Role.values)}"})
    require_role_at_most(principal, value, action=WRITE_ACTION, doing="register an application with role")
    return value


def _scopes(principal: Principal, value) -> list[str]:
    """Validated scopes; a caller with scopes grants at most those (and by default exactly those)."""
    if value is None:
        return sorted(principal.scopes) if principal.scopes is not None else []
    scopes = scopes_check(value)
    if principal.scopes is not None:
        beyond = sorted(set(scopes) - principal.scopes) if scopes else ["(every scope)"]
        if beyond:
            raise _refuse(principal, f"the caller's scopes do not include {', '.join(beyond)}")
    return scopes


def _refuse(principal: Principal, reason: str) -> PermissionDenied:
    audit_denied(principal=principal, permission=WRITE_ACTION, tenant_id=principal.tenant_id, reason=reason)
    return PermissionDenied(reason, code="permission_denied")


def _may_manage(principal: Principal, app: Application) -> None:
    require_role_at_most(principal, app.role, action=WRITE_ACTION, doing="manage an application with role")


def _live(app: Application) -> None:
    if app.revoked_at is not None:
        raise Conflict(f"application '{app.id}' is revoked", code="application_revoked")


def _tokens_delete(oauth_application_id: int | None) -> int:
    if oauth_application_id is None:
        return 0
    get_refresh_token_model().objects.filter(application_id=oauth_application_id).delete()
    deleted, _ = get_access_token_model().objects.filter(application_id=oauth_application_id).delete()
    return deleted


# ------------------------------------------------------------------------------------------ applications


def app_register(
    *,
    principal: Principal,
    tenant: Tenant,
    name: str,
    webhook_url: str = "",
    webhook_events: list[str] | None = None,
    scopes: list[str] | None = None,
    role: str = Role.OPERATOR,
    rate_limit_per_minute: int | None = None,
) -> tuple[Application, dict[str, str]]:
    """Register an application with its API key, OAuth2 client and webhook secret.

    Returns the application and its secrets, shown this once: `api_key`, `client_id`, `client_secret`, and
    `webhook_secret` when a webhook URL is set.
    """
    require(principal, WRITE_ACTION, tenant_id=tenant.pk)
    fields: dict[str, str] = {}
    values: dict[str, Any] = {}
    for field, check in (
        ("name", lambda: _name(name)),
        ("webhook_url", lambda: _webhook_url(webhook_url)),
        ("rate_limit_per_minute", lambda: _rate_limit(rate_limit_per_minute)),
    ):
        try:
            values[field] = check()
        except ValidationFailed as error:
            fields.update(error.fields)
    try:
        values["webhook_events"] = _webhook_events(webhook_events, webhook_url=values.get("webhook_url", ""))
    except ValidationFailed as error:
        fields.update(error.fields)
    if role not in Role.values:
        fields["role"] = f"one of {', '.join(Role.values)}"
    scopes_checked = None
    try:
        scopes_checked = scopes_check(scopes) if scopes is not None else None
    except ValidationFailed as error:
        fields.update(error.fields)
    if fields:
        raise ValidationFailed("invalid application", fields=fields)
    values["role"] = _role(principal, role)
    values["scopes"] = _scopes(principal, scopes_checked)
    _webhook_events_readable(values["webhook_events"], tenant=tenant, role=values["role"], scopes=values["scopes"])

    app_id = new_id("app")
    client_secret = generate_client_secret()
    with transaction.atomic():
        key, raw_key = apikey_issue(
            tenant=tenant, role=values["role"], name=f"{values['name']} ({app_id})", created_by=principal.actor
        )
        client = get_application_model()(
            name=f"{values['name']} ({app_id})"[:255],
            client_type="confidential",
            authorization_grant_type="client-credentials",
            client_secret=client_secret,  # hashed by the toolkit when saved
            hash_client_secret=True,
            redirect_uris="",
        )
        client.save()
        app = Application.objects.create(
            id=app_id,
            tenant=tenant,
            api_key=key,
            oauth_application=client,
            webhook_secret_salt=new_salt(),
            created_by=principal.actor,
            **values,
        )
        audit_record(
            action="app.registered",
            tenant_id=tenant.pk,
            principal=principal,
            target=app.id,
            details=json_safe(
                {
                    **{field: values[field] for field in ("name", "role", "scopes", "webhook_url", "webhook_events")},
                    "rate_limit_per_minute": values["rate_limit_per_minute"],
                    "api_key_id": key.id,
                    "client_id": client.client_id,
                }
            ),
        )
        cache_forget("credentials")  # principals and webhook subscriptions, now and after commit
    secrets = {"api_key": raw_key, "client_id": client.client_id, "client_secret": client_secret}
    if app.webhook_url:
        secrets["webhook_secret"] = webhook_secret(app_id=app.id, salt=app.webhook_secret_salt)
    return app, secrets


def app_update(
    *,
    principal: Principal,
    tenant: Tenant,
    app_id: str,
    name: str = _UNSET,
    webhook_url: str = _UNSET,
    webhook_events: list[str] | None = _UNSET,
    scopes: list[str] = _UNSET,
    rate_limit_per_minute: int | None = _UNSET,
) -> tuple[Application, dict[str, str]]:
    """Change what is given; the rest stays. Returns the application and, when this sets a webhook URL on an
    application that had none, its webhook secret (shown this once), else no secrets."""
    given = {
        field: value
        for field, value in (
            ("name", name),
            ("webhook_url", webhook_url),
            ("webhook_events", webhook_events),
            ("scopes", scopes),
            ("rate_limit_per_minute", rate_limit_per_minute),
        )
        if value is not _UNSET
    }
    require(principal, WRITE_ACTION, tenant_id=tenant.pk)
    if not given:
        raise ValidationFailed("nothing to change", code="nothing_to_change", fields={"body": "give a field to change"})
    with transaction.atomic():
        app = app_access(principal=principal, tenant_id=tenant.pk, app_id=app_id, action=WRITE_ACTION, for_update=True)
        _live(app)
        _may_manage(principal, app)
        changes = _validated_changes(principal, app, given)
        if "webhook_events" in changes or "scopes" in changes:
            events, scopes = changes.get("webhook_events", app.webhook_events), changes.get("scopes", app.scopes)
            _webhook_events_readable(events, tenant=tenant, role=app.role, scopes=scopes)
        previous = {field: getattr(app, field) for field in changes}
        had_url = bool(app.webhook_url)
        for field, value in changes.items():
            setattr(app, field, value)
        if changes:
            app.save(update_fields=list(changes))
        if "scopes" in changes:  # its sockets are held to the new scopes at once
            access_changed(tenant_id=tenant.pk, application_id=app.id)
        if "name" in changes:
            ApiKey.objects.filter(pk=app.api_key_id).update(name=f"{app.name} ({app.id})"[:200])
            get_application_model().objects.filter(pk=app.oauth_application_id).update(name=f"{app.name} ({app.id})"[:255])
        audit_record(
            action="app.updated",
            tenant_id=tenant.pk,
            principal=principal,
            target=app.id,
            details=json_safe({"changed": changes, "previous": previous}),
        )
        cache_forget("credentials")  # principals and webhook subscriptions, now and after commit
    secrets = {}
    if app.webhook_url and not had_url:
        secrets["webhook_secret"] = webhook_secret(app_id=app.id, salt=app.webhook_secret_salt)
    return app, secrets


def _validated_changes(principal: Principal, app: Application, given: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, str] = {}
    changes: dict[str, Any] = {}
    checks = {
        "name": _name,
        "webhook_url": _webhook_url,
        "rate_limit_per_minute": _rate_limit,
        "scopes": scopes_check,
    }
    for field, check in checks.items():
        if field in given:
            try:
                changes[field] = check(given[field])
            except ValidationFailed as error:
                fields.update(error.fields)
    if "webhook_events" in given:
        url = changes.get("webhook_url", app.webhook_url)
        try:
            changes["webhook_events"] = _webhook_events(given["webhook_events"], webhook_url=url)
        except ValidationFailed as error:
            fields.update(error.fields)
    elif changes.get("webhook_url") and not app.webhook_url and not app.webhook_events:
        changes["webhook_events"] = ["*"]  # a first URL, as at registration: everything unless told otherwise
    if fields:
        raise ValidationFailed("invalid application", fields=fields)
    if "scopes" in changes:
        changes["scopes"] = _scopes(principal, changes["scopes"])
    return {field: value for field, value in changes.items() if getattr(app, field) != value}


def app_rotate(
    *, principal: Principal, tenant: Tenant, app_id: str, credentials: list[str] | None = None
) -> tuple[Application, dict[str, str]]:
    """Replace credentials (`api_key`, `client_secret`, `webhook_secret`; default: all the application uses).

    The old API key is revoked and a new client secret invalidates every token issued so far; both stop
    working at once in this process and within NEXUS_AUTH_CACHE_S everywhere. Returns the new secrets.
    """
    require(principal, WRITE_ACTION, tenant_id=tenant.pk)
    if credentials is not None and (
        not isinstance(credentials, (list, tuple))
        or not credentials
        or not all(isinstance(c, str) and c in CREDENTIALS for c in credentials)
    ):
        raise ValidationFailed("invalid credentials", fields={"credentials": f"a non-empty list of {', '.join(CREDENTIALS)}"})
    with transaction.atomic():
        app = app_access(principal=principal, tenant_id=tenant.pk, app_id=app_id, action=WRITE_ACTION, for_update=True)
        _live(app)
        _may_manage(principal, app)
        if credentials is None:
            chosen = ["api_key", "client_secret"] + (["webhook_secret"] if app.webhook_url else [])
        else:
            chosen = [c for c in CREDENTIALS if c in credentials]
        secrets: dict[str, str] = {}
        details: dict[str, Any] = {"credentials": chosen}
        if "api_key" in chosen:
            old_key_id = app.api_key_id
            ApiKey.objects.filter(pk=old_key_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
            key, secrets["api_key"] = apikey_issue(
                tenant=tenant, role=app.role, name=f"{app.name} ({app.id})", created_by=principal.actor
            )
            app.api_key = key
            app.save(update_fields=["api_key"])
            access_ended(reason="apikey_revoked", tenant_id=tenant.pk, api_key_id=old_key_id)
            details.update(api_key_id=key.id, previous_api_key_id=old_key_id)
        if "client_secret" in chosen:
            client = get_application_model().objects.select_for_update().get(pk=app.oauth_application_id)
            secrets["client_id"] = client.client_id
            secrets["client_secret"] = client.client_secret = generate_client_secret()
            client.save(update_fields=["client_secret", "updated"])
            details["tokens_revoked"] = _tokens_delete(client.pk)
            access_ended(reason="tokens_revoked", tenant_id=tenant.pk, application_id=app.id)
        if "webhook_secret" in chosen:
            app.webhook_secret_salt = new_salt()
            app.save(update_fields=["webhook_secret_salt"])
            secrets["webhook_secret"] = webhook_secret(app_id=app.id, salt=app.webhook_secret_salt)
        audit_record(action="app.rotated", tenant_id=tenant.pk, principal=principal, target=app.id, details=details)
        cache_forget("credentials")  # principals and webhook subscriptions, now and after commit
    return app, secrets


def app_revoke(*, principal: Principal, tenant: Tenant, app_id: str) -> Application:
    """Revoke an application for good: its API key, its OAuth2 client and tokens, its pending webhook
    deliveries. Revoking a revoked application changes nothing (and says so in the audit row)."""
    require(principal, WRITE_ACTION, tenant_id=tenant.pk)
    with transaction.atomic():
        app = app_access(principal=principal, tenant_id=tenant.pk, app_id=app_id, action=WRITE_ACTION, for_update=True)
        _may_manage(principal, app)
        details: dict[str, Any] = {"already_revoked": app.revoked_at is not None}
        if app.revoked_at is None:
            now = timezone.now()
            app.revoked_at = now
            app.save(update_fields=["revoked_at"])
            ApiKey.objects.filter(pk=app.api_key_id, revoked_at__isnull=True).update(revoked_at=now)
            details["tokens_revoked"] = _tokens_delete(app.oauth_application_id)
            access_ended(reason="application_revoked", tenant_id=tenant.pk, application_id=app.id)
            details["deliveries_failed"] = webhook_deliveries_fail(
                application_id=app.id, reason="not sent: the application was revoked"
            )
        audit_record(action="app.revoked", tenant_id=tenant.pk, principal=principal, target=app.id, details=details)
        cache_forget("credentials")  # principals and webhook subscriptions, now and after commit
    return app


# ------------------------------------------------------------------------------------------ OAuth2 records


def _application_for_client_id(client_id: str | None) -> Application | None:
    if not client_id or not isinstance(client_id, str) or len(client_id) > 255 or "\x00" in client_id:
        return None
    return Application.objects.filter(oauth_application__client_id=client_id).first()


def oauth_token_issued(*, access_token: str, channel: str = "api") -> None:
    """Record `oauth.token_issued` for a token the toolkit has just stored (looked up by its checksum)."""
    token = (
        get_access_token_model()
        .objects.select_related("application__nexus_application")
        .filter(token_checksum=hash_key(access_token))
        .first()
    )
    app = getattr(token.application, "nexus_application", None) if token is not None else None
    if app is None:
        return
    audit_record(
        action="oauth.token_issued",
        tenant_id=app.tenant_id,
        actor=f"app:{app.id}",
        actor_type="api_key",
        target=app.id,
        details={"client_id": token.application.client_id, "scope": token.scope, "expires": token.expires.isoformat()},
        channel=channel,
    )


def oauth_token_refused(*, client_id: str | None, error: str, channel: str = "api") -> None:
    """Record `oauth.token_failed` durably: under the application's tenant when the client id names one."""
    app = _application_for_client_id(client_id)
    audit_record(
        action="oauth.token_failed",
        tenant_id=app.tenant_id if app is not None else None,
        actor=f"app:{app.id}" if app is not None else "anonymous",
        actor_type="api_key" if app is not None else "anonymous",
        target=app.id if app is not None else "oauth",
        outcome=Outcome.DENIED,
        details=json_safe({"client_id": (client_id or "")[:255], "error": error}),
        channel=channel,
        durable=True,
    )


def oauth_token_revoked(*, client_id: str | None, channel: str = "api") -> None:
    """After the toolkit revoked a token of `client_id` (RFC 7009): forget cached tokens, record it."""
    cache_forget("credentials")
    app = _application_for_client_id(client_id)
    if app is None:
        return
    access_changed(tenant_id=app.tenant_id, application_id=app.id)  # a socket on the revoked token closes now
    audit_record(
        action="oauth.token_revoked",
        tenant_id=app.tenant_id,
        actor=f"app:{app.id}",
        actor_type="api_key",
        target=app.id,
        details={"client_id": client_id},
        channel=channel,
    )


def delivery_redeliver(*, principal: Principal, tenant_id: int, app_id: str, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again, whatever its state: back to pending with a fresh set of attempts, due now."""
    app = delivery_application(principal=principal, tenant_id=tenant_id, app_id=app_id, action=WRITE_ACTION)
    if not DELIVERY_ID_RE.match(delivery_id or ""):
        raise delivery_missing(delivery_id)
    if app.revoked_at is not None:
        raise Conflict(f"application '{app.id}' is revoked", code="application_revoked")
    if not app.webhook_url:
        raise Conflict(f"application '{app.id}' has no webhook URL", code="no_webhook_url")
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(id=delivery_id, application=app).first()
        if delivery is None:
            raise delivery_missing(delivery_id)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [delivery_lock_key(delivery.id)])
            if not cursor.fetchone()[0]:
                raise Conflict("the delivery is being sent right now; try again in a moment", code="delivery_in_flight")
        previous = {"previous_status": delivery.status, "previous_attempts": delivery.attempts}
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.response_code = None
        delivery.latency_ms = None
        delivery.last_error = ""
        delivery.delivered_at = None
        delivery.next_attempt_at = timezone.now()
        delivery.save(
            update_fields=["status", "attempts", "response_code", "latency_ms", "last_error", "delivered_at", "next_attempt_at"]
        )
        audit_record(
            action="webhook.redelivered",
            tenant_id=tenant_id,
            principal=principal,
            target=delivery.id,
            details={"application": app.id, "event_id": delivery.event_id, "event_type": delivery.event_type, **previous},
        )
        transaction.on_commit(lambda: deliveries_enqueue([delivery.id]), robust=True)
    return delivery
