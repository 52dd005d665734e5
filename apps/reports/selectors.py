"""Metrics over a caller's rows: the engine's `metrics` node, outside any run."""

from typing import Any

from apps.accounts.access import require
from apps.core.principal import Principal
from apps.engine.library.metrics import METRICS
from apps.workflows.single_node import node_call

METRIC_NAMES: tuple[str, ...] = tuple(METRICS)


def metrics_compute(
    *,
    principal: Principal,
    tenant_id: int,
    rows: list[dict[str, Any]],
    field: str | None = None,
    metrics: list[str] | None = None,
    group_by: str | None = None,
) -> dict[str, Any]:
    """Summary statistics of `field` over `rows`, overall or per `group_by` value. Arithmetic over rows the
    caller already holds: it needs as much as reading a dataset (`dataset.read`), no more."""
    require(principal, "dataset.read", tenant_id=tenant_id)
    config: dict[str, Any] = {"rows": "inputs.rows"}
    for key, value in (("field", field), ("metrics", metrics), ("group_by", group_by)):
        if value is not None:
            config[key] = value
    output = node_call(node_type="metrics", config=config, inputs={"rows": rows})
    return output if isinstance(output, dict) else {"result": output}
