"""API applications (an API key and an OAuth2 client bound to one tenant, with scopes) and their webhook
deliveries, in the public schema: credentials are resolved before a tenant is known, and the delivery
workers need no tenant context."""

from django.conf import settings
from django.db import models

from apps.accounts.models import Role


class Application(models.Model):
    """An external system integrating with one tenant (DESIGN §5).

    It acts under `role`, narrowed by `scopes` (empty: everything the role allows). Its credentials live
    where each door already looks: an `accounts.ApiKey` (hashed) and a django-oauth-toolkit client
    (secret hashed by the toolkit). The webhook signing secret is never stored: it is derived from the
    site secret and `webhook_secret_salt`, and rotating the salt rotates the secret.
    """

    id = models.CharField(primary_key=True, max_length=40)  # app_…
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="applications")
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATOR)
    scopes = models.JSONField(default=list, blank=True)
    api_key = models.OneToOneField(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="application"
    )
    oauth_application = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="nexus_application",
    )
    webhook_url = models.URLField(max_length=2000, blank=True)
    # Event types the application receives: exact types (`execution.completed`), `<entity>.*`, or `*`.
    webhook_events = models.JSONField(default=list, blank=True)
    webhook_secret_salt = models.CharField(max_length=64, blank=True)
    # Requests per minute for this application's credentials; None: the tenant plan's default for apps.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "revoked_at"], name="integ_app_tenant_live")]

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one application's webhook URL; `whd_…`."""

    id = models.CharField(primary_key=True, max_length=40)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="deliveries")
    tenant_id = models.BigIntegerField(db_index=True)
    event_id = models.CharField(max_length=40)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["application", "event_id"], name="integ_delivery_app_event_unique")]
        indexes = [
            models.Index(fields=["application", "-created_at"], name="integ_delivery_app_recent"),
            models.Index(fields=["status", "next_attempt_at"], name="integ_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.event_type} ({self.status})"
