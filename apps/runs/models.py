"""Execution: one run of a pinned workflow version, with its per-node steps, in the tenant's schema."""

from typing import Any

from django.db import connections, models
from psycopg.types.json import Jsonb

from apps.audit.models import TABLE as AUDIT_TABLE
from apps.audit.models import AuditRow
from apps.audit.models import insert_params as audit_insert_params
from apps.audit.models import insert_plan as audit_insert_plan


class Status(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_RECOVERY = "completed_with_recovery"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


TERMINAL_STATUSES = frozenset(
    {Status.COMPLETED, Status.COMPLETED_WITH_RECOVERY, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT}
)


class Channel(models.TextChoices):
    API = "api"
    CLI = "cli"
    MCP = "mcp"
    WEB = "web"
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"


class Execution(models.Model):
    """Steps are kept as one JSON list on the row: a run writes them together (or one by one on a worker,
    for live progress), and reading a run never needs a second query."""

    id = models.CharField(primary_key=True, max_length=40)
    # No single-column FK indexes: (workflow, created_at) serves lookups by workflow, versions are never
    # deleted, and each index is paid on every insert of the hot path.
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.PROTECT, related_name="executions", db_index=False)
    # Denormalised so history reads without joins and keeps the name the run was made under.
    workflow_slug = models.CharField(max_length=80)
    version = models.ForeignKey("workflows.WorkflowVersion", on_delete=models.PROTECT, related_name="executions", db_index=False)
    version_number = models.PositiveIntegerField()
    environment = models.CharField(max_length=40, blank=True)  # "" for a test run of the latest version
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.QUEUED)
    inputs = models.JSONField(default=dict)
    outputs = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    actor = models.CharField(max_length=200)
    session_id = models.CharField(max_length=40, null=True, blank=True)
    # A run started by a `subworkflow` node records its parent and how deep it is.
    parent_id = models.CharField(max_length=40, null=True, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    steps = models.JSONField(default=list)
    recovery = models.JSONField(default=list)
    inline = models.BooleanField(default=False)
    attempt = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    # Not a column: run_start sets it when the caller asked to wait but no wait slot was free, so the door can say
    # why it got the run unfinished.
    wait_capped: bool = False

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="execution_created"),
            models.Index(fields=["workflow", "-created_at"], name="execution_workflow_created"),
            models.Index(
                fields=["session_id", "-created_at"],
                name="execution_session_created",
                condition=models.Q(session_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


_insert_plan: tuple[str, list] | None = None


def _insert_plan_for(conn) -> tuple[str, list]:
    """The INSERT statement and, per column, how to turn the attribute into a parameter. JSON columns
    are wrapped for psycopg; every other column type here is adapted by psycopg as it is."""
    global _insert_plan
    if _insert_plan is None:
        fields = Execution._meta.concrete_fields
        columns = ", ".join(conn.ops.quote_name(f.column) for f in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {Execution._meta.db_table} ({columns}) VALUES ({placeholders})"  # noqa: S608 (model metadata)
        _insert_plan = (sql, [(f.attname, isinstance(f, models.JSONField)) for f in fields])
    return _insert_plan


_audited_plan: tuple[str, list] | None = None


def _audited_plan_for(conn) -> tuple[str, list]:
    """The run INSERT and its audit row's INSERT as one statement, a data-modifying CTE: still one round trip
    and one commit, and the audit row exists exactly when the run does. Its target is the inserted run's id."""
    global _audited_plan
    if _audited_plan is None:
        run_sql, _ = _insert_plan_for(conn)
        columns, plan = audit_insert_plan(conn)
        values = ", ".join("run.id" if name == "target" else "%s" for name, _ in plan)
        sql = f"WITH run AS ({run_sql} RETURNING id) INSERT INTO {AUDIT_TABLE} ({columns}) SELECT {values} FROM run"  # noqa: S608
        _audited_plan = (sql, [item for item in plan if item[0] != "target"])
    return _audited_plan


def execution_insert(execution: Execution, *, audit: AuditRow | None = None) -> None:
    """INSERT one execution in a single statement: what `save(force_insert=True)` does, without the
    ORM's per-call query compilation, which dominated the execute hot path (bench/RESULTS.md). With `audit`,
    the same statement inserts that audit row too."""
    conn = connections["default"]
    sql, plan = _insert_plan_for(conn)
    values: list[Any] = []  # psycopg parameters: Jsonb wrappers among plain values
    for name, is_json in plan:
        value = getattr(execution, name)
        values.append(Jsonb(value) if is_json and value is not None else value)  # None is SQL NULL, as the ORM does
    if audit is not None:
        sql, audit_plan = _audited_plan_for(conn)
        values.extend(audit_insert_params(audit, audit_plan))
    with conn.cursor() as cursor:
        cursor.execute(sql, values)
    execution._state.adding = False
