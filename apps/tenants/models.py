"""Tenant (one PostgreSQL schema each), Domain, and the cached SQL that creates a tenant schema, all in the public schema."""

from django.conf import settings
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Isolation(models.TextChoices):
    STRICT = "strict"
    STANDARD = "standard"


class TenantQuerySet(models.QuerySet):
    def real(self) -> "TenantQuerySet":
        """Tenants people own: without the public schema's row and the template that new schemas are cloned from."""
        return self.exclude(schema_name__in=(settings.PUBLIC_SCHEMA_NAME, settings.NEXUS_TENANT_TEMPLATE_SCHEMA))


class Tenant(TenantMixin):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    plan = models.CharField(max_length=40, default="standard")
    # Quotas are stored and shown here; None means unlimited.
    quota_workflows = models.PositiveIntegerField(null=True, blank=True)
    quota_executions = models.PositiveIntegerField(null=True, blank=True)
    # Email messages per UTC day (apps/mail); None means NEXUS_MAIL_PER_TENANT_PER_DAY.
    quota_mail_per_day = models.PositiveIntegerField(null=True, blank=True)
    isolation = models.CharField(max_length=20, choices=Isolation.choices, default=Isolation.STRICT)
    # Runs of a strict tenant executing at once on the workers; None means NEXUS_TENANT_CONCURRENCY.
    max_concurrent_runs = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Schemas are created by apps.tenants.services (by cloning the template, or by migrating), never as a
    # side effect of save(): django-tenants would otherwise migrate every new schema a second time.
    auto_create_schema = False

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_template(self) -> bool:
        return self.schema_name == settings.NEXUS_TENANT_TEMPLATE_SCHEMA


class Domain(DomainMixin):
    pass


class SchemaDump(models.Model):
    """The SQL that recreates the template schema, keyed by the migrations it is at.

    Kept in the database rather than on one machine's disk so every node of a cluster creates tenants from
    the same dump; `key` changes whenever a migration is added, so a stale dump is never replayed.
    """

    key = models.CharField(primary_key=True, max_length=64)
    migrations = models.JSONField()
    sql = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key
