"""`nexus session create|info|history`: sessions of the tenant; info and history default to NEXUS_SESSION."""

from rich.panel import Panel

from apps.cli.context import parse_json_option, table
from apps.cli.verbs import leaf
from apps.core.errors import ValidationFailed
from apps.nexus_sessions.representation import session_data
from apps.nexus_sessions.selectors import session_executions, session_get
from apps.nexus_sessions.services import session_create
from apps.runs.representation import execution_data


def register(verbs) -> None:
    group = verbs.add_parser("session", help="create and inspect sessions (NEXUS_SESSION binds commands to one)")
    sub = group.add_subparsers(dest="session_verb", metavar="VERB", required=True)
    create = leaf(sub, "create", create_session, "create a session")
    create.add_argument("--user", default="", help="who the session is for (free text, e.g. your end user's id)")
    create.add_argument("--metadata", default=None, help="metadata as a JSON object")
    leaf(sub, "info", show_session, "show a session (default: NEXUS_SESSION)").add_argument("session", nargs="?")
    leaf(sub, "history", session_history, "list the session's runs, newest first (default: NEXUS_SESSION)").add_argument(
        "session", nargs="?"
    )


def _session_ref(ctx, options) -> str:
    session_id = options.get("session") or ctx.session_id
    if not session_id:
        raise ValidationFailed(
            "no session given: pass a session id or set NEXUS_SESSION", code="session_required", fields={"session": "required"}
        )
    return session_id


def _render_session(out, d) -> None:
    body = f"user: {d['user'] or '-'}\ncreated {d['created_at']} by {d['created_by']}\nlast seen {d['last_seen_at']}"
    out.print(Panel(body + f"\nexpires {d['expires_at']}", title=d["id"]))
    if d["metadata"]:
        out.print_json(data=d["metadata"])


def create_session(ctx, options) -> None:
    metadata = parse_json_option(options["metadata"], name="metadata")
    session = session_create(principal=ctx.principal, tenant_id=ctx.tenant.pk, user=options["user"], metadata=metadata)
    ctx.emit(session_data(session), _render_session)


def show_session(ctx, options) -> None:
    session = session_get(principal=ctx.principal, tenant_id=ctx.tenant.pk, session_id=_session_ref(ctx, options))
    ctx.emit(session_data(session), _render_session)


def session_history(ctx, options) -> None:
    session, executions = session_executions(
        principal=ctx.principal, tenant_id=ctx.tenant.pk, session_id=_session_ref(ctx, options)
    )
    runs = [execution_data(e, with_steps=False) for e in executions]
    data = {
        "session": session.id,
        "count": len(executions),
        "executions": runs,
    }
    rows = [[e["id"], e["workflow"], e["status"], e["channel"], e["created_at"]] for e in runs]
    ctx.emit(
        data, lambda out, d: out.print(table(f"runs of {d['session']}", ["id", "workflow", "status", "channel", "created"], rows))
    )
