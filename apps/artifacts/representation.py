"""The one JSON shape of an artifact (metadata; the bytes are a download), shared by every channel."""

from typing import Any

from apps.artifacts.models import Artifact
from apps.core.dates import iso_utc


def artifact_data(artifact: Artifact) -> dict[str, Any]:
    return {
        "id": artifact.id,
        "name": artifact.name,
        "content_type": artifact.content_type,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "execution_id": artifact.execution_id,
        "node_id": artifact.node_id,
        "created_at": iso_utc(artifact.created_at),
    }
