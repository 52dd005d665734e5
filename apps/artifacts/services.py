"""Artifact writes: store the bytes a run produced, checked for name, type and size."""

import hashlib

from django.conf import settings
from django.db import transaction

from apps.accounts.access import require
from apps.artifacts.models import Artifact
from apps.audit.recorder import audit_record
from apps.core.errors import ValidationFailed
from apps.core.ids import new_id
from apps.core.principal import Principal

# What a principal needs to store an artifact itself, outside a run (e.g. a chart an MCP agent renders).
CREATE_ACTION = "artifact.create"

# Served as downloads only (apps/api/artifacts.py): never rendered in the API's origin.
CONTENT_TYPES = ("image/svg+xml", "image/png", "text/csv", "application/json", "text/plain", "application/pdf")
MAX_NAME = 200


def max_bytes() -> int:
    return getattr(settings, "NEXUS_ARTIFACT_MAX_BYTES", 10 * 1024 * 1024)


def _check_name(name) -> None:
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= MAX_NAME
        or name in (".", "..")
        or any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in name)
    ):
        raise ValidationFailed(
            "invalid artifact name",
            fields={"name": f"1-{MAX_NAME} characters, no '/', '\\' or control characters, not '.' or '..'"},
        )


def artifact_store(
    *, name: str, content_type: str, data: bytes, execution_id: str | None = None, node_id: str | None = None
) -> Artifact:
    """Store a file made by a run. No principal: only runs call this, and they were authorised to start."""
    _check_name(name)
    if not isinstance(content_type, str) or content_type.lower() not in CONTENT_TYPES:
        raise ValidationFailed("content type not allowed", fields={"content_type": f"one of {', '.join(CONTENT_TYPES)}"})
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValidationFailed("artifact data must be bytes", fields={"data": "must be bytes"})
    data = bytes(data)
    limit = max_bytes()
    if len(data) > limit:
        raise ValidationFailed(f"artifact larger than {limit} bytes", fields={"data": f"at most {limit} bytes"})
    return Artifact.objects.create(
        id=new_id("art"),
        name=name,
        content_type=content_type.lower(),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        execution_id=execution_id,
        node_id=node_id,
    )


def artifact_create(
    *, principal: Principal, tenant_id: int, name: str, content_type: str, data: bytes, source: str, node_id: str | None = None
) -> Artifact:
    """Store a file a principal made outside any run (`source` says how, e.g. `render_chart`): it needs
    `artifact.create`, and leaves an `artifact.created` audit row in the same transaction."""
    require(principal, CREATE_ACTION, tenant_id=tenant_id)
    with transaction.atomic():
        artifact = artifact_store(name=name, content_type=content_type, data=data, node_id=node_id)
        audit_record(
            action="artifact.created",
            tenant_id=tenant_id,
            principal=principal,
            target=artifact.id,
            details={"name": artifact.name, "content_type": artifact.content_type, "size": artifact.size, "source": source},
        )
    return artifact
