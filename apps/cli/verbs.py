"""What every CLI command group registers its verbs with: the global options and the `leaf` helper."""

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
