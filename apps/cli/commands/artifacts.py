"""`nexus artifact list|get`: the files runs produced."""

from pathlib import Path

from rich.panel import Panel

from apps.artifacts.representation import artifact_data
from apps.artifacts.selectors import artifact_get, artifact_list
from apps.cli.context import table
from apps.cli.verbs import leaf
from apps.core.errors import ValidationFailed


def register(verbs) -> None:
    group = verbs.add_parser("artifact", help="files produced by runs (charts, reports)")
    sub = group.add_subparsers(dest="artifact_verb", metavar="VERB", required=True)
    listing = leaf(sub, "list", list_artifacts, "list artifacts, newest first")
    listing.add_argument("--execution", default=None, help="only those of this run (run_…)")
    listing.add_argument("--limit", type=int, default=50)
    get = leaf(sub, "get", get_artifact, "show an artifact; with --output, write its bytes to a file")
    get.add_argument("artifact")
    get.add_argument("--output", default=None, help="write the bytes to this file")


def list_artifacts(ctx, options) -> None:
    count, artifacts = artifact_list(
        principal=ctx.principal, tenant_id=ctx.tenant.pk, execution=options["execution"], limit=options["limit"]
    )
    data = {"count": count, "artifacts": [artifact_data(a) for a in artifacts]}
    ctx.emit(
        data,
        lambda out, d: out.print(
            table(
                f"artifacts in {ctx.tenant_slug} ({len(d['artifacts'])} of {d['count']})",
                ["id", "name", "type", "bytes", "execution", "created"],
                [[a["id"], a["name"], a["content_type"], a["size"], a["execution_id"], a["created_at"]] for a in d["artifacts"]],
            )
        ),
    )


def get_artifact(ctx, options) -> None:
    output = options["output"]
    artifact = artifact_get(
        principal=ctx.principal, tenant_id=ctx.tenant.pk, artifact_id=options["artifact"], with_data=output is not None
    )
    data = artifact_data(artifact)
    if output is not None:
        try:
            Path(output).write_bytes(bytes(artifact.data))
        except OSError as error:
            raise ValidationFailed(f"cannot write {output}: {error.strerror}", fields={"output": error.strerror}) from None
        data["output"] = output
    ctx.emit(
        data,
        lambda out, d: out.print(
            Panel(
                f"{d['name']}  {d['content_type']}  {d['size']} bytes\nsha256 {d['sha256']}\nexecution {d['execution_id']}"
                + (f"\nwritten to {d['output']}" if "output" in d else ""),
                title=d["id"],
            )
        ),
    )
