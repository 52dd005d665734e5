"""The datasets port a workflow run uses (the `dataset` query node): read-only queries in the run's schema."""

from apps.core.errors import ApplicationError
from apps.datasets.selectors import dataset_query_for_run
from apps.engine import NodeError
from apps.tenants.connection import current_owner, current_schema, use_tenant


def node_error(error: ApplicationError) -> NodeError:
    """The domain error as the engine's NodeError: same code, the reason and the fields in one line.
    Bad queries and missing datasets fail the same way on every attempt; a timeout may pass later."""
    reasons = "; ".join(f"{field}: {reason}" for field, reason in error.fields.items())
    message = f"{error.detail} ({reasons})" if reasons else error.detail
    return NodeError(error.code, message, retryable=error.status >= 500)


class DatasetsPort:
    def __init__(self):
        # The run's tenant, captured on the thread that starts the run: the engine may call a node on a
        # worker thread, whose own database connection starts on the public schema.
        self._tenant = current_owner()

    def query(self, *, dataset, filters=(), group_by=(), aggregates=(), order_by=(), limit=1000) -> list[dict]:
        # No principal: the run was authorised when it started, and the query cannot write.
        if current_schema() != self._tenant.schema_name:
            use_tenant(self._tenant)
        try:
            return dataset_query_for_run(
                dataset=dataset,
                filters=filters,
                group_by=group_by,
                aggregates=aggregates,
                order_by=order_by,
                limit=limit,
            )
        except ApplicationError as error:
            raise node_error(error) from None
