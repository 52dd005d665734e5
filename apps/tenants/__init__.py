"""Tenants: the Tenant and Domain models (public schema) and tenant creation."""
