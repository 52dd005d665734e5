"""The artifacts port a workflow run uses: store files it makes (charts, reports), load them (mail attachments)."""

from apps.artifacts.selectors import artifact_content
from apps.artifacts.services import artifact_create, artifact_store
from apps.core.errors import ApplicationError
from apps.core.principal import Principal
from apps.engine import NodeError
from apps.tenants.connection import current_owner, current_schema, use_tenant


class ArtifactsPort:
    """A run's port (`execution_id`), or a principal's asking for one node directly in a tenant (`principal`,
    `tenant_id`, `source`): its files are then stored by `artifact_create`, which checks `artifact.create` and
    audits each one."""

    def __init__(
        self,
        *,
        execution_id: str | None = None,
        principal: Principal | None = None,
        tenant_id: int | None = None,
        source: str = "",
    ):
        if (principal is None) != (tenant_id is None):
            raise TypeError("a principal's artifacts port names its tenant: pass principal and tenant_id together")
        self.execution_id = execution_id
        self.principal = principal
        self.tenant_id = tenant_id
        self.source = source
        # The run's tenant: the engine may call a node on a worker thread, whose connection starts on public.
        self._tenant = current_owner()

    def _in_run_schema(self) -> None:
        if current_schema() != self._tenant.schema_name:
            use_tenant(self._tenant)

    def store(self, *, name: str, content_type: str, data: bytes, node_id: str | None = None) -> dict:
        self._in_run_schema()
        if isinstance(data, str):  # SVG, CSV and JSON are often built as text
            data = data.encode()
        try:
            if self.principal is not None and self.tenant_id is not None:
                artifact = artifact_create(
                    principal=self.principal,
                    tenant_id=self.tenant_id,
                    name=name,
                    content_type=content_type,
                    data=data,
                    source=self.source,
                    node_id=node_id,
                )
            else:
                artifact = artifact_store(
                    name=name, content_type=content_type, data=data, execution_id=self.execution_id, node_id=node_id
                )
        except ApplicationError as error:
            reasons = "; ".join(f"{field}: {reason}" for field, reason in error.fields.items())
            raise NodeError(error.code, f"{error.detail} ({reasons})" if reasons else error.detail, retryable=False) from None
        return {
            "id": artifact.id,
            "name": artifact.name,
            "content_type": artifact.content_type,
            "size": artifact.size,
            "sha256": artifact.sha256,
        }

    def load(self, artifact_id: str) -> tuple[str, str, bytes]:
        """(name, content type, bytes) of an artifact of this tenant."""
        self._in_run_schema()
        found = artifact_content(artifact_id) if isinstance(artifact_id, str) else None
        if found is None:
            raise NodeError("artifact_not_found", f"artifact '{artifact_id}' does not exist", retryable=False)
        return found
