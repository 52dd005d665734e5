"""`manage.py nexus <verb>`: parse, pick the command group's handler, map domain errors to exit codes."""

import json
import os
import sys

from django.core.management.base import BaseCommand

from apps.cli.commands import GROUPS
from apps.cli.context import CliContext, exit_code_for
from apps.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Nexus command line: workflows, runs, keys, tenants, health, and `up` to start the platform."
    requires_system_checks: list = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", default=os.environ.get("NEXUS_TENANT", "default"), help="tenant slug (NEXUS_TENANT)")
        parser.add_argument("--as", dest="as_user", default=os.environ.get("NEXUS_USER"), help="act as this user (NEXUS_USER)")
        parser.add_argument("--json", action="store_true", help="print exactly one JSON document")
        verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=type(parser))
        for group in GROUPS:
            group.register(verbs)

    def handle(self, *args, **options) -> None:
        ctx = CliContext(tenant_slug=options["tenant"], as_user=options["as_user"], json=options["json"])
        handler = options["handler"]
        try:
            handler(ctx, options)
        except ApplicationError as error:
            if ctx.json:
                sys.stderr.write(json.dumps({"error": error.as_dict()}) + "\n")
            else:
                sys.stderr.write(f"error: {error.detail} ({error.code})\n")
                for field_name, reason in error.fields.items():
                    sys.stderr.write(f"  {field_name}: {reason}\n")
            sys.exit(exit_code_for(error))
