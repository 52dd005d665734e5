"""Tenant (one PostgreSQL schema each) and Domain, both in the public schema."""

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Tenant(TenantMixin):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    plan = models.CharField(max_length=40, default="standard")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    auto_create_schema = True

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Domain(DomainMixin):
    pass
