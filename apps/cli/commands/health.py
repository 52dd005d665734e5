"""`nexus health`: the same report as GET /health, from this machine's point of view."""

import sys

from apps.cli.context import table
from apps.cli.verbs import leaf
from apps.ops.services import health_check


def register(verbs) -> None:
    leaf(verbs, "health", show_health, "check the database, Redis and workers")


def show_health(ctx, options) -> None:
    report = health_check()

    def render(out, d):
        rows = [
            [name, "ok" if c["ok"] else "FAIL", c.get("latency_ms", ""), c.get("error", c.get("count", ""))]
            for name, c in d["checks"].items()
        ]
        out.print(table(f"health: {d['status']}", ["check", "state", "ms", "detail"], rows))

    ctx.emit(report, render)
    if report["status"] == "down":
        sys.exit(1)
