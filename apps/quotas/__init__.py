"""Tenant quotas: workflows per tenant, executions per period and email messages per day, enforced by the
services of every channel.

No models: the limits live on the Tenant (apps/tenants) or in settings, the counters in Redis.
"""
