"""Memberships (a user's role in a tenant) and API keys (hashed, bound to one tenant), in the public schema."""

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_unique")]

    def __str__(self) -> str:
        return f"user {self.user_id} in tenant {self.tenant_id} as {self.role}"


class ApiKey(models.Model):
    """A key is `nxk_<prefix>_<secret>`; only the SHA-256 of the whole key is kept.

    The secret carries 256 bits of randomness, so a fast hash is safe here (no dictionary to attack) and
    keeps the per-request lookup to one indexed equality match.
    """

    id = models.CharField(primary_key=True, max_length=40)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    role = models.CharField(max_length=20, choices=Role.choices)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.role})"


class LoginOutcome(models.TextChoices):
    SUCCESS = "success"
    FAILURE = "failure"
