"""`nexus dataset upload|list|show|query|delete`."""

import json
from pathlib import Path

from rich.panel import Panel

from apps.cli.context import parse_json_option, table
from apps.cli.verbs import leaf
from apps.core.errors import ValidationFailed
from apps.datasets.representation import dataset_data
from apps.datasets.selectors import dataset_list, dataset_query, dataset_rows
from apps.datasets.services import dataset_delete, dataset_upload


def register(verbs) -> None:
    group = verbs.add_parser("dataset", help="manage the tenant's datasets (tables workflows query)")
    sub = group.add_subparsers(dest="dataset_verb", metavar="VERB", required=True)
    upload = leaf(sub, "upload", upload_dataset, "create a dataset from a CSV or JSON file, or replace (or append to) its rows")
    upload.add_argument("name")
    upload.add_argument("--file", required=True, help="a CSV file with a header row, or a JSON list of objects")
    upload.add_argument("--format", choices=["csv", "json"], default=None, help="default: from the file's extension")
    upload.add_argument("--append", action="store_true", help="add the rows instead of replacing them")
    upload.add_argument("--description", default=None)
    leaf(sub, "list", list_datasets, "list the tenant's datasets")
    show = leaf(sub, "show", show_dataset, "show a dataset's columns and first rows")
    show.add_argument("dataset")
    show.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
    query = leaf(sub, "query", query_dataset, "filter, group, aggregate and order a dataset's rows (read-only)")
    query.add_argument("dataset")
    query.add_argument(
        "--query",
        default="{}",
        help='a JSON object: {"filters": [...], "group_by": [...], "aggregates": [...], "order_by": [...], "limit": N}',
    )
    leaf(sub, "delete", delete_dataset, "delete a dataset and its rows").add_argument("dataset")


def _read_upload(path: str, kind: str | None) -> dict:
    kind = kind or ("csv" if path.lower().endswith(".csv") else "json" if path.lower().endswith(".json") else None)
    if kind is None:
        raise ValidationFailed(f"cannot tell the format of {path}", fields={"format": "give --format csv or --format json"})
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ValidationFailed(f"cannot read {path}: {error.strerror}", fields={"file": error.strerror}) from None
    except UnicodeDecodeError as error:
        raise ValidationFailed(f"{path} is not UTF-8 text", fields={"file": str(error)}) from None
    if kind == "csv":
        return {"csv_text": text}
    try:
        return {"rows": json.loads(text)}
    except ValueError as error:
        raise ValidationFailed(f"{path} is not valid JSON: {error}", code="malformed_json", fields={"file": str(error)}) from None


def _render_rows(out, title: str, columns: list[str], rows: list[dict]) -> None:
    out.print(table(title, columns, [[_cell(row.get(c)) for c in columns] for row in rows]))


def _cell(value) -> str:
    return "null" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)


def upload_dataset(ctx, options) -> None:
    dataset = dataset_upload(
        principal=ctx.principal,
        tenant_id=ctx.tenant.pk,
        name=options["name"],
        mode="append" if options["append"] else "replace",
        description=options["description"],
        **_read_upload(options["file"], options["format"]),
    )
    ctx.emit(
        dataset_data(dataset),
        lambda out, d: out.print(
            Panel(
                f"[bold]{d['name']}[/] ({d['id']}): {d['row_count']} rows, "
                + ", ".join(f"{c['name']} {c['type']}" for c in d["columns"]),
                title="dataset appended" if options["append"] else "dataset uploaded",
            )
        ),
    )


def list_datasets(ctx, options) -> None:
    data = {"datasets": [dataset_data(d) for d in dataset_list(principal=ctx.principal, tenant_id=ctx.tenant.pk)]}
    ctx.emit(
        data,
        lambda out, d: out.print(
            table(
                f"datasets in {ctx.tenant_slug}",
                ["name", "id", "rows", "columns", "updated"],
                [[x["name"], x["id"], x["row_count"], len(x["columns"]), x["updated_at"]] for x in d["datasets"]],
            )
        ),
    )


def show_dataset(ctx, options) -> None:
    dataset, rows = dataset_rows(principal=ctx.principal, tenant_id=ctx.tenant.pk, ref=options["dataset"], limit=options["limit"])
    data = dataset_data(dataset, preview=rows)

    def render(out, d):
        nullable = {c["name"]: "?" if c["nullable"] else "" for c in d["columns"]}
        out.print(
            Panel(
                f"{d['id']}  {d['row_count']} rows  {d['size_bytes']} bytes\n{d['description']}".rstrip(),
                title=d["name"],
            )
        )
        out.print(table("columns", ["name", "type"], [[c["name"], c["type"] + nullable[c["name"]]] for c in d["columns"]]))
        _render_rows(out, f"first {len(d['preview'])} rows", [c["name"] for c in d["columns"]], d["preview"])

    ctx.emit(data, render)


def query_dataset(ctx, options) -> None:
    query = parse_json_option(options["query"], name="query")
    allowed = {"filters", "group_by", "aggregates", "order_by", "limit"}
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise ValidationFailed("unknown query keys", fields={f"query.{key}": "unknown key" for key in unknown})
    rows = dataset_query(principal=ctx.principal, tenant_id=ctx.tenant.pk, dataset=options["dataset"], **query)
    data = {"count": len(rows), "results": rows}

    def render(out, d):
        columns = list(d["results"][0]) if d["results"] else []
        _render_rows(out, f"{options['dataset']}: {d['count']} rows", columns, d["results"])

    ctx.emit(data, render)


def delete_dataset(ctx, options) -> None:
    dataset = dataset_delete(principal=ctx.principal, tenant_id=ctx.tenant.pk, ref=options["dataset"])
    ctx.emit(
        {"status": "deleted", "id": dataset.id, "name": dataset.name},
        lambda out, d: out.print(f"deleted {d['name']} ({d['id']})"),
    )
