"""Tenant quotas: workflows per tenant and executions per period, enforced by the services of every channel.

No models: the limits live on the Tenant (apps/tenants), the execution counters in Redis.
"""
