"""CLI command groups; each module registers its verbs on the `nexus` parser (with apps/cli/verbs.py)."""

from apps.cli.commands import (
    apikeys,
    applications,
    artifacts,
    audit,
    datasets,
    health,
    mail,
    mcp,
    runs,
    sessions,
    tenants,
    up,
    users,
    workflows,
)

GROUPS = [workflows, runs, apikeys, applications, tenants, health, up, datasets, artifacts, mail, users, mcp, sessions, audit]
