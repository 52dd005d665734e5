"""`nexus audit list|verify|prune`."""

import json
import sys

from apps.audit.representation import audit_event_data
from apps.audit.selectors import audit_list, tenant_slugs
from apps.audit.services import audit_prune, audit_verify
from apps.cli.context import table
from apps.cli.verbs import leaf

# `verify` found the chain broken: not a usage or access error (those keep their codes), a finding.
EXIT_CHAIN_BROKEN = 6


def register(verbs) -> None:
    group = verbs.add_parser("audit", help="read and check the audit log")
    sub = group.add_subparsers(dest="audit_verb", metavar="VERB", required=True)
    listing = leaf(sub, "list", list_events, "list audit rows, newest first (or after --since, oldest first)")
    listing.add_argument("--since", default=None, help="an ISO 8601 date or time, or an aud_… id (rows after it)")
    listing.add_argument("--action", default=None, help="e.g. workflow.deleted, or workflow.* for every workflow action")
    listing.add_argument("--actor", default=None, help="e.g. user:alice, apikey:key_…")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--only-tenant", dest="only_tenant", default=None, metavar="SLUG", help="platform admins: one tenant")
    leaf(sub, "verify", verify_chain, "seal new rows, then check the whole hash chain (platform admins)")
    prune = leaf(sub, "prune", prune_events, "delete sealed rows past the retention now (platform admins)")
    prune.add_argument("--days", type=int, default=None, help="retention in days (default NEXUS_AUDIT_RETENTION_DAYS)")


def list_events(ctx, options) -> None:
    events = audit_list(
        principal=ctx.principal,
        tenant_id=ctx.tenant.pk,
        tenant_slug=options["only_tenant"],
        since=options["since"],
        action=options["action"],
        actor=options["actor"],
        limit=options["limit"],
    )
    slugs = tenant_slugs(e.tenant_id for e in events)
    data = {"events": [audit_event_data(e, slugs=slugs) for e in events]}
    ctx.emit(
        data,
        lambda out, d: out.print(
            table(
                "audit log",
                ["seq", "time", "tenant", "actor", "channel", "action", "target", "outcome"],
                [
                    [
                        e["seq"],
                        e["ts"],
                        e["tenant"] or e["tenant_id"],
                        e["actor"],
                        e["channel"],
                        e["action"],
                        e["target"],
                        e["outcome"],
                    ]
                    for e in d["events"]
                ],
            )
        ),
    )


def verify_chain(ctx, options) -> None:
    result = audit_verify(principal=ctx.principal)
    data = result.as_dict()

    def render(out, d):
        if d["valid"]:
            start = f"after the prune boundary at seq {d['anchor']['seq']}" if d["anchor"] else "from its first row"
            out.print(f"[green]valid[/]: {d['rows']} rows chained {start}; {d['unsealed']} newer rows not sealed yet")

    if ctx.json:
        ctx.emit(data)
    else:
        render(ctx.out, data)
    problem = result.problem
    if problem is not None:  # exactly when the chain is not valid
        sys.stderr.write(
            f"error: audit chain broken at seq {problem['seq']} ({problem['id']}, chain position {problem['chain_index']}):"
            f" {problem['reason']}\n"
        )
        if ctx.json:
            sys.stderr.write(json.dumps({"error": {"code": "audit_chain_broken", **problem}}) + "\n")
        sys.exit(EXIT_CHAIN_BROKEN)


def prune_events(ctx, options) -> None:
    result = audit_prune(principal=ctx.principal, retention_days=options["days"])
    ctx.emit(result, lambda out, d: out.print(f"pruned {d['deleted']} rows older than {d['cutoff']}"))
