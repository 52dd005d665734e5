"""Charts and emailed reports asked for directly (an MCP agent), outside any run: the engine's `chart` and
`email` nodes with the caller's data, behind the caller's own actions (`artifact.create`, `mail.send`).

Each checks its action before any work, so a refused call renders, stores and sends nothing; the services the
nodes reach check it again and record what they did (`artifact.created`, `mail.sent`).
"""

from collections.abc import Sequence
from typing import Any

from apps.accounts.access import require
from apps.artifacts.ports import ArtifactsPort
from apps.artifacts.services import CREATE_ACTION
from apps.core.principal import Principal
from apps.mail.ports import MailPort
from apps.mail.services import MAIL_SEND_ACTION
from apps.workflows.single_node import node_call


def chart_render(
    *,
    principal: Principal,
    tenant_id: int,
    rows: list[dict[str, Any]],
    kind: str,
    x: str,
    y: str | list[str],
    title: str | None = None,
    format: str = "png",
    name: str | None = None,
    width: int | None = None,
    height: int | None = None,
    source: str = "render_chart",
) -> dict[str, Any]:
    """Render `rows` as a chart and store it as an artifact of the tenant; returns the artifact's metadata
    (`id`, `name`, `content_type`, `size`, `sha256`)."""
    require(principal, CREATE_ACTION, tenant_id=tenant_id)
    # Title and name are the caller's text, not templates: pass them as inputs and render them verbatim.
    config: dict[str, Any] = {"rows": "inputs.rows", "kind": kind, "x": x, "y": y, "format": format}
    config["name"] = "{{ inputs.name }}"
    if title is not None:
        config["title"] = "{{ inputs.title }}"
    for key, value in (("width", width), ("height", height)):
        if value is not None:
            config[key] = value
    inputs = {"rows": rows, "title": title or "", "name": name or f"chart.{format}"}
    artifacts = ArtifactsPort(principal=principal, tenant_id=tenant_id, source=source)
    return node_call(node_type="chart", config=config, inputs=inputs, ports={"artifacts": artifacts})


def report_email_send(
    *,
    principal: Principal,
    tenant_id: int,
    to: Sequence[str],
    cc: Sequence[str] = (),
    subject: str,
    body: str,
    artifact_ids: Sequence[str] = (),
    source: str = "send_email_report",
) -> dict[str, Any]:
    """Send a plain-text email, the tenant's artifacts `artifact_ids` attached; subject and body are the
    caller's text, never templates. Returns `{"message_id", "accepted", "attachments"}`."""
    require(principal, MAIL_SEND_ACTION, tenant_id=tenant_id)
    if artifact_ids:
        require(principal, "artifact.read", tenant_id=tenant_id)
    to, cc = list(to), list(cc)
    config: dict[str, Any] = {
        "to": [f"{{{{ inputs.to[{i}] }}}}" for i in range(len(to))],
        "subject": "{{ inputs.subject }}",
        "body": "{{ inputs.body }}",
    }
    if cc:
        config["cc"] = [f"{{{{ inputs.cc[{i}] }}}}" for i in range(len(cc))]
    if artifact_ids:
        config["attachments"] = ["inputs.artifact_ids"]
    artifacts = ArtifactsPort()
    mail = MailPort(artifacts=artifacts, principal=principal, source=source)
    inputs = {"to": to, "cc": cc, "subject": subject, "body": body, "artifact_ids": list(artifact_ids)}
    return node_call(node_type="email", config=config, inputs=inputs, ports={"artifacts": artifacts, "mail": mail})
