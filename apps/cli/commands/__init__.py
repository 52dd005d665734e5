"""CLI command groups; each module registers its verbs on the `nexus` parser."""

import argparse

from apps.audit.context import in_context

# Global options are accepted before or after the verb (`nexus --json history`, `nexus history --json`).
COMMON = argparse.ArgumentParser(add_help=False)
COMMON.add_argument("--tenant", default=argparse.SUPPRESS, help="tenant slug (NEXUS_TENANT, default 'default')")
COMMON.add_argument("--as", dest="as_user", default=argparse.SUPPRESS, help="act as this user (NEXUS_USER)")
COMMON.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print exactly one JSON document")


def leaf(subparsers, name: str, handler, help_text: str):
    parser = subparsers.add_parser(name, parents=[COMMON], help=help_text, description=help_text)
    parser.set_defaults(handler=in_context(handler, channel="cli"))  # audit rows of this verb: channel cli
    return parser


from apps.cli.commands import (  # noqa: E402
    apikeys,
    apps,
    artifacts,
    audit,
    datasets,
    health,
    mcp,
    runs,
    sessions,
    tenants,
    up,
    users,
    workflows,
)

GROUPS = [workflows, runs, apikeys, apps, tenants, health, up, datasets, artifacts, users, mcp, sessions, audit]
