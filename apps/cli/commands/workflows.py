"""`nexus create workflow`, `nexus workflow create|list|show|delete`, `nexus deploy`."""

import json
from pathlib import Path

import yaml
from rich.panel import Panel

from apps.cli.context import table
from apps.cli.verbs import leaf
from apps.core.errors import ValidationFailed
from apps.workflows.representation import deployment_data, workflow_data
from apps.workflows.selectors import deployments_by_workflow, workflow_get, workflow_list, workflow_validate
from apps.workflows.services import workflow_create, workflow_delete, workflow_deploy, workflow_update
from apps.workflows.templates_library import templates


def register(verbs) -> None:
    create = verbs.add_parser("create", help="create something (`nexus create workflow <slug>`)")
    create_kinds = create.add_subparsers(dest="create_kind", metavar="KIND", required=True)
    _create_args(leaf(create_kinds, "workflow", create_workflow, "create a workflow from a template or a file"))

    group = verbs.add_parser("workflow", help="manage workflows")
    sub = group.add_subparsers(dest="workflow_verb", metavar="VERB", required=True)
    _create_args(leaf(sub, "create", create_workflow, "create a workflow from a template or a file"))
    leaf(sub, "list", list_workflows, "list the tenant's workflows")
    leaf(sub, "show", show_workflow, "show a workflow and its definition").add_argument("workflow")
    leaf(sub, "delete", delete_workflow, "delete a workflow (its runs stay in history)").add_argument("workflow")
    leaf(sub, "validate", validate_workflow, "check a definition file without storing anything").add_argument(
        "--file", required=True, help="a JSON or YAML definition"
    )
    update = leaf(sub, "update", update_workflow, "replace a workflow's definition (adds a version) or rename it")
    update.add_argument("workflow")
    update.add_argument("--file", default=None, help="a JSON or YAML definition")
    update.add_argument("--name", default=None)
    update.add_argument("--description", default=None)

    templates = verbs.add_parser("template", help="the workflow template library")
    template_verbs = templates.add_subparsers(dest="template_verb", metavar="VERB", required=True)
    leaf(template_verbs, "list", list_templates, "list the templates `nexus create workflow --template` accepts")

    deploy = leaf(verbs, "deploy", deploy_workflow, "deploy a workflow's latest (or given) version")
    deploy.add_argument("workflow")
    deploy.add_argument("--env", default="production", help="environment (default production)")
    deploy.add_argument("--version", type=int, default=None, help="version number (default: latest)")


def _create_args(parser) -> None:
    parser.add_argument("slug")
    parser.add_argument("--template", default=None, help="template name (default basic)")
    parser.add_argument("--file", default=None, help="a JSON or YAML definition file")
    parser.add_argument("--name", default="")
    parser.add_argument("--description", default="")


def _read_definition(path: str) -> dict:
    """A definition file: JSON, or YAML for files ending .yaml/.yml (safe loader: data only, no tags)."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ValidationFailed(f"cannot read {path}: {error.strerror}", fields={"file": error.strerror}) from None
    if path.endswith((".yaml", ".yml")):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValidationFailed(
                f"{path} is not valid YAML: {error}", code="malformed_yaml", fields={"file": str(error)}
            ) from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValidationFailed(f"{path} is not valid JSON: {error}", code="malformed_json", fields={"file": str(error)}) from None


def validate_workflow(ctx, options) -> None:
    definition = _read_definition(options["file"])
    data = workflow_validate(principal=ctx.principal, tenant_id=ctx.tenant.pk, definition=definition)
    ctx.emit(data, lambda out, d: out.print(f"[green]valid[/]: {len(d['nodes'])} nodes ({', '.join(d['nodes'])})"))


def update_workflow(ctx, options) -> None:
    definition = _read_definition(options["file"]) if options["file"] else None
    workflow = workflow_update(
        principal=ctx.principal,
        tenant_id=ctx.tenant.pk,
        ref=options["workflow"],
        name=options["name"],
        description=options["description"],
        definition=definition,
    )
    data = workflow_data(workflow)
    ctx.emit(data, lambda out, d: out.print(f"{d['slug']} is at version {d['version']}"))


def list_templates(ctx, options) -> None:
    data = {"templates": [{"name": name, "title": t["name"], "description": t["description"]} for name, t in templates().items()]}
    ctx.emit(
        data,
        lambda out, d: out.print(
            table(
                "templates", ["name", "title", "description"], [[t["name"], t["title"], t["description"]] for t in d["templates"]]
            )
        ),
    )


def create_workflow(ctx, options) -> None:
    definition = _read_definition(options["file"]) if options["file"] else None
    workflow = workflow_create(
        principal=ctx.principal,
        tenant_id=ctx.tenant.pk,
        slug=options["slug"],
        name=options["name"],
        description=options["description"],
        definition=definition,
        template=options["template"],
    )
    data = {"workflow_id": workflow.id, **workflow_data(workflow)}
    ctx.emit(
        data,
        lambda out, d: out.print(
            Panel(f"[bold]{d['slug']}[/] created as {d['workflow_id']} (version {d['version']})", title="workflow created")
        ),
    )


def list_workflows(ctx, options) -> None:
    workflows = workflow_list(principal=ctx.principal, tenant_id=ctx.tenant.pk)
    deployments = deployments_by_workflow([w.id for w in workflows])
    data = {"workflows": [workflow_data(w, deployments=deployments[w.id]) for w in workflows]}

    def render(out, d):
        rows = [
            [
                w["slug"],
                w["id"],
                w["version"],
                ", ".join(f"{x['environment']}@v{x['version']}" for x in w["deployments"]) or "-",
                w["updated_at"],
            ]
            for w in d["workflows"]
        ]
        out.print(table(f"workflows in {ctx.tenant_slug}", ["slug", "id", "version", "deployed", "updated"], rows))

    ctx.emit(data, render)


def show_workflow(ctx, options) -> None:
    workflow = workflow_get(principal=ctx.principal, tenant_id=ctx.tenant.pk, ref=options["workflow"])
    data = workflow_data(workflow, deployments=deployments_by_workflow([workflow.id])[workflow.id], with_definition=True)
    ctx.emit(data)


def delete_workflow(ctx, options) -> None:
    workflow = workflow_delete(principal=ctx.principal, tenant_id=ctx.tenant.pk, ref=options["workflow"])
    ctx.emit(
        {"status": "deleted", "workflow_id": workflow.id, "slug": workflow.slug},
        lambda out, d: out.print(f"deleted {d['slug']} ({d['workflow_id']})"),
    )


def deploy_workflow(ctx, options) -> None:
    deployment = workflow_deploy(
        principal=ctx.principal,
        tenant_id=ctx.tenant.pk,
        ref=options["workflow"],
        environment=options["env"],
        version=options["version"],
    )
    data = {
        "status": "deployed",
        "workflow_id": deployment.workflow_id,
        "workflow": deployment.workflow.slug,
        **deployment_data(deployment),
    }
    ctx.emit(
        data,
        lambda out, d: out.print(
            Panel(f"[bold]{d['workflow']}[/] v{d['version']} is live in [bold]{d['environment']}[/]", title="deployed")
        ),
    )
