"""Run reads: one execution, and filtered history, inside the caller's tenant."""

from apps.accounts.access import require
from apps.core.errors import NotFound, ValidationFailed
from apps.core.principal import Principal
from apps.runs.models import Channel, Execution, Status


def run_get(*, principal: Principal, tenant_id: int, run_id: str) -> Execution:
    require(principal, "execution.read", tenant_id=tenant_id)
    execution = Execution.objects.filter(id=run_id).first()
    if execution is None:
        raise NotFound(f"execution '{run_id}' does not exist", code="execution_not_found")
    return execution


def run_list(
    *,
    principal: Principal,
    tenant_id: int,
    workflow: str | None = None,
    session: str | None = None,
    channel: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[Execution]]:
    require(principal, "execution.read", tenant_id=tenant_id)
    if channel and channel not in Channel.values:
        raise ValidationFailed("unknown channel", fields={"channel": f"one of {', '.join(Channel.values)}"})
    if status and status not in Status.values:
        raise ValidationFailed("unknown status", fields={"status": f"one of {', '.join(Status.values)}"})
    if not 1 <= limit <= 500:
        raise ValidationFailed("limit out of range", fields={"limit": "between 1 and 500"})
    if offset < 0:
        raise ValidationFailed("offset out of range", fields={"offset": "0 or more"})
    queryset = Execution.objects.all()
    if workflow:
        queryset = (
            queryset.filter(workflow_id=workflow) if workflow.startswith("wf_") else queryset.filter(workflow_slug=workflow)
        )
    if session:
        queryset = queryset.filter(session_id=session)
    if channel:
        queryset = queryset.filter(channel=channel)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.count(), list(queryset.order_by("-created_at", "-id")[offset : offset + limit])
