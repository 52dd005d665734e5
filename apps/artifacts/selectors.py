"""Artifact reads, inside the caller's tenant schema: another tenant's artifact does not exist."""

from apps.accounts.access import require
from apps.artifacts.models import Artifact
from apps.core.errors import NotFound, ValidationFailed
from apps.core.principal import Principal


def artifact_get(*, principal: Principal, tenant_id: int, artifact_id: str, with_data: bool = False) -> Artifact:
    require(principal, "artifact.read", tenant_id=tenant_id)
    queryset = Artifact.objects.all() if with_data else Artifact.objects.defer("data")
    artifact = queryset.filter(id=artifact_id).first()
    if artifact is None:
        raise NotFound(f"artifact '{artifact_id}' does not exist", code="artifact_not_found")
    return artifact


def artifact_list(
    *, principal: Principal, tenant_id: int, execution: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[int, list[Artifact]]:
    """Metadata only, newest first; the bytes stay in the database."""
    require(principal, "artifact.read", tenant_id=tenant_id)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
        raise ValidationFailed("limit out of range", fields={"limit": "between 1 and 500"})
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationFailed("offset out of range", fields={"offset": "0 or more"})
    queryset = Artifact.objects.defer("data")
    if execution:
        queryset = queryset.filter(execution_id=execution)
    return queryset.count(), list(queryset.order_by("-created_at", "-id")[offset : offset + limit])


def artifact_content(artifact_id: str) -> tuple[str, str, bytes] | None:
    """(name, content type, bytes) in the current schema, for a run's own ports (no principal: see ports.py)."""
    found = Artifact.objects.filter(id=artifact_id).values_list("name", "content_type", "data").first()
    if found is None:
        return None
    name, content_type, data = found
    return name, content_type, bytes(data)
