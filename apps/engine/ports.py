"""The services a run reaches through ``execute(ports=...)``: what each port object must provide.

The engine never imports the implementations (they live in the Django apps). A run gets a mapping
from port name to object; a node needing a name that is missing fails with ``port_unavailable``.

Rules every implementation follows:

* Methods take keyword arguments only and return plain JSON data (dicts, lists, str, int, float,
  bool, None).
* Domain failures raise ``apps.engine.NodeError(code, message)`` with a stable code (for example
  ``dataset_not_found``); the engine treats them like any node error, so ``retry`` and ``on_error``
  apply. Pass ``retryable=False`` when repeating the call cannot help. Any other exception becomes
  a ``port_error`` node error carrying the exception's text, so do not put secrets in messages.
* Methods may be called from one of the run's worker threads, several at once (branches run
  concurrently). They must be thread-safe and must not rely on the calling thread's state: a
  Django implementation either opens what it needs per call (database connection in the right
  tenant schema) or relies on the ``worker_scope`` the caller passed to ``execute``.
* A call should respect the node's time: it has no deadline argument, so keep calls bounded
  (timeouts on network I/O).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["PORT_NAMES", "ArtifactsPort", "DatasetsPort", "EventsPort", "MailPort", "WorkflowsPort"]


@runtime_checkable
class DatasetsPort(Protocol):
    """``ports["datasets"]``: read-only queries of the tenant's datasets (used by ``dataset_query``)."""

    def query(
        self,
        *,
        dataset: str,
        filters: list[dict[str, Any]],
        group_by: list[str],
        aggregates: list[dict[str, str]],
        order_by: list[dict[str, Any]],
        limit: int,
    ) -> list[dict[str, Any]]:
        """Return at most `limit` rows (dicts of column -> JSON value) of dataset `dataset`.

        `filters`: ``[{"field": str, "op": "eq"|"ne"|"lt"|"lte"|"gt"|"gte"|"in"|"contains", "value": Any}]``,
        all of which must hold (``in``: value is a list; ``contains``: substring). `group_by`: column
        names; with it (or with aggregates) each row is one group: its group_by columns plus one column per
        aggregate. `aggregates`: ``[{"fn": "count"|"sum"|"avg"|"min"|"max", "field": str (absent for
        count), "as": str}]``. `order_by`: ``[{"field": str, "desc": bool}]`` (a column or an aggregate's
        "as"). Field names match ``^[A-Za-z_][A-Za-z0-9_]{0,62}$``; the implementation must still check
        them against the dataset's columns and raise NodeError ``unknown_field`` for others. Raise
        NodeError ``dataset_not_found`` (retryable=False) for an unknown dataset.
        """
        ...


@runtime_checkable
class ArtifactsPort(Protocol):
    """``ports["artifacts"]``: files a run produces (used by ``chart``), stored with the run."""

    def store(self, *, name: str, content_type: str, data: bytes) -> dict[str, Any]:
        """Store `data` and return its description, e.g.
        ``{"id": "art_…", "name": name, "content_type": content_type, "size": len(data)}``.

        `name` is a file name without directories; the "id" is what ``email`` attachments refer to.
        """
        ...


@runtime_checkable
class MailPort(Protocol):
    """``ports["mail"]``: outgoing email (used by ``email``)."""

    def send(
        self,
        *,
        to: list[str],
        cc: list[str],
        subject: str,
        body: str,
        html: str | None,
        attachment_ids: list[str],
    ) -> dict[str, Any]:
        """Send one message and return e.g. ``{"message_id": "<…>", "accepted": [addresses]}``.

        Addresses have already been checked loosely (one "@", no whitespace or control characters) and
        the subject is one line. `attachment_ids` are ids returned by ``ArtifactsPort.store`` in this
        run. Raise NodeError ``email_failed`` when the message could not be sent.
        """
        ...


@runtime_checkable
class EventsPort(Protocol):
    """``ports["events"]``: the platform's event bus (used by ``notify``)."""

    def publish(self, *, type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Publish an event of `type` (``<entity>.<past_verb>``, e.g. ``report.ready``) with `data`;
        return e.g. ``{"id": "evt_…", "type": type}``."""
        ...


@runtime_checkable
class WorkflowsPort(Protocol):
    """``ports["workflows"]``: runs of other workflows of the same tenant (used by ``subworkflow``)."""

    def run(
        self,
        *,
        workflow: str,
        inputs: dict[str, Any],
        environment: str,
        depth: int,
        deadline: float | None = None,
        threads: Any = None,
    ) -> dict[str, Any]:
        """Run the workflow deployed as `workflow` (slug or id) in `environment` with `inputs`, wait for it,
        and return ``{"execution_id": "run_…", "status": <run status>, "outputs": {...}, "error": {...}|None}``.

        `depth` is the child's subworkflow depth (the caller's + 1): pass it as ``execute(depth=...)`` so
        nesting limits hold. `deadline` (time.monotonic()) is what is left of the calling node's time and
        `threads` the run tree's ThreadBudget: pass both to ``execute`` so a tree of runs keeps one deadline
        and one budget of worker threads (and database connections). The engine has already refused depths
        above ``max_subworkflow_depth``. A child that ends failed, timed_out or cancelled is reported through
        "status" and "error", not raised; raise NodeError (e.g. ``workflow_not_found``) when the child cannot be started.
        """
        ...


PORT_NAMES: tuple[str, ...] = ("datasets", "artifacts", "mail", "events", "workflows")
