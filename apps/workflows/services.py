"""Workflow writes: create (from a definition or a template), update (adds a version), delete, deploy."""

import hashlib
import json
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.access import require
from apps.audit.recorder import audit_record
from apps.core.cache import cache_forget
from apps.core.errors import Conflict, ValidationFailed
from apps.core.ids import new_id
from apps.core.principal import Principal
from apps.events.services import publish
from apps.quotas.services import workflow_quota_check
from apps.workflows.compiled import compile_definition
from apps.workflows.models import Deployment, Workflow, WorkflowVersion
from apps.workflows.selectors import workflow_get, workflow_latest_version
from apps.workflows.templates_library import template_get

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,78}[a-z0-9]$|^[a-z0-9]$")
# Path words under /api/v1/workflows/ that a slug would shadow.
RESERVED_SLUGS = frozenset({"validate"})
ENVIRONMENT_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def _checksum(definition: dict) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _add_version(*, workflow: Workflow, definition: dict, actor: str, number: int) -> WorkflowVersion:
    version = WorkflowVersion(
        id=new_id("wfv"),
        workflow=workflow,
        number=number,
        definition=definition,
        checksum=_checksum(definition),
        created_by=actor,
    )
    version.save()
    workflow.latest_version = version
    workflow.save(update_fields=["latest_version", "updated_at"])
    return version


def _event_data(workflow: Workflow) -> dict:
    """What workflow.* events carry (the definition stays out: fetch it by id)."""
    number = workflow.latest_version.number if workflow.latest_version else None
    return {"workflow_id": workflow.id, "slug": workflow.slug, "name": workflow.name, "version": number}


def workflow_create(
    *,
    principal: Principal,
    tenant_id: int,
    slug: str,
    name: str = "",
    description: str = "",
    definition: dict | None = None,
    template: str | None = None,
) -> Workflow:
    require(principal, "workflow.create", tenant_id=tenant_id)
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or slug.startswith("wf_") or slug in RESERVED_SLUGS:
        raise ValidationFailed(
            "invalid workflow slug",
            fields={"slug": "1-80 characters: lower-case letters, digits and '-', not starting or ending with '-'"},
        )
    if definition is not None and template is not None:
        raise ValidationFailed("give a definition or a template, not both", fields={"template": "conflicts with definition"})
    if definition is None:
        chosen = template_get(template or "basic")
        definition = chosen["definition"]
        name = name or chosen["name"]
        description = description or chosen["description"]
    compile_definition(definition)
    try:
        with transaction.atomic():
            workflow_quota_check(tenant_id=tenant_id)  # QuotaExceeded at the tenant's limit: nothing is created
            workflow = Workflow.objects.create(
                id=new_id("wf"), slug=slug, name=(name or slug)[:200], description=description, created_by=principal.actor
            )
            _add_version(workflow=workflow, definition=definition, actor=principal.actor, number=1)
            publish(type="workflow.created", data=_event_data(workflow))
            audit_record(
                action="workflow.created",
                tenant_id=tenant_id,
                principal=principal,
                target=workflow.id,
                details=_event_data(workflow),
            )
    except IntegrityError:
        raise Conflict(f"workflow '{slug}' already exists", code="workflow_exists", fields={"slug": "already exists"}) from None
    return workflow


def workflow_update(
    *,
    principal: Principal,
    tenant_id: int,
    ref: str,
    name: str | None = None,
    description: str | None = None,
    definition: dict | None = None,
) -> Workflow:
    workflow = workflow_get(principal=principal, tenant_id=tenant_id, ref=ref, action="workflow.update")
    if definition is not None:
        compile_definition(definition)
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        if name is not None:
            workflow.name = name[:200]
        if description is not None:
            workflow.description = description
        workflow.save(update_fields=["name", "description", "updated_at"])
        latest = workflow.latest_version
        if definition is not None and (latest is None or latest.checksum != _checksum(definition)):
            _add_version(
                workflow=workflow,
                definition=definition,
                actor=principal.actor,
                number=(latest.number if latest is not None else 0) + 1,
            )
        publish(type="workflow.updated", data=_event_data(workflow))
        audit_record(
            action="workflow.updated", tenant_id=tenant_id, principal=principal, target=workflow.id, details=_event_data(workflow)
        )
    return workflow


def workflow_delete(*, principal: Principal, tenant_id: int, ref: str) -> Workflow:
    """Soft delete: runs keep pointing at their version, and the slug becomes free again."""
    workflow = workflow_get(principal=principal, tenant_id=tenant_id, ref=ref, action="workflow.delete")
    with transaction.atomic():
        workflow.deleted_at = timezone.now()
        workflow.save(update_fields=["deleted_at", "updated_at"])
        Deployment.objects.filter(workflow=workflow).delete()
        publish(type="workflow.deleted", data=_event_data(workflow))
        audit_record(
            action="workflow.deleted", tenant_id=tenant_id, principal=principal, target=workflow.id, details=_event_data(workflow)
        )
        cache_forget("deployments")  # its deployments are gone: now, and again once committed
    return workflow


def workflow_deploy(
    *, principal: Principal, tenant_id: int, ref: str, environment: str = "production", version: int | None = None
) -> Deployment:
    if not isinstance(environment, str) or not ENVIRONMENT_RE.match(environment):
        raise ValidationFailed("invalid environment", fields={"environment": "lower-case letters, digits and '-'"})
    workflow = workflow_get(principal=principal, tenant_id=tenant_id, ref=ref, action="workflow.deploy")
    target = workflow.versions.filter(number=version).first() if version is not None else workflow_latest_version(workflow)
    if target is None:
        raise ValidationFailed(f"version {version} does not exist", fields={"version": "no such version"})
    with transaction.atomic():
        deployment, _ = Deployment.objects.update_or_create(
            workflow=workflow,
            environment=environment,
            defaults={"version": target, "deployed_by": principal.actor, "deployed_at": timezone.now()},
            create_defaults={
                "id": new_id("dep"),
                "version": target,
                "deployed_by": principal.actor,
                "deployed_at": timezone.now(),
            },
        )
        publish(type="workflow.deployed", data={**_event_data(workflow), "environment": environment, "version": target.number})
        audit_record(
            action="workflow.deployed",
            tenant_id=tenant_id,
            principal=principal,
            target=workflow.id,
            details={**_event_data(workflow), "environment": environment, "version": target.number},
        )
        cache_forget("deployments")  # now, and again once committed
    return deployment
