"""AuditEvent: one append-only, hash-chained row per audited action, in the public schema (apps/audit/chain.py)."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from psycopg.types.json import Jsonb

SEQUENCE = "public.audit_auditevent_seq"
TABLE = "public.audit_auditevent"
# Written by the sealer only (NULL on insert); every other column is fixed once the row is inserted.
SEAL_FIELDS = ("chain_index", "prev_seq", "prev_hash", "hash")


class NextVal(models.Func):
    """`nextval('<sequence>')` as a column default: the database numbers rows, so no insert reads another row."""

    function = "nextval"
    output_field = models.BigIntegerField()

    def __init__(self, sequence: str, **extra):
        super().__init__(models.Value(sequence), **extra)


class Outcome(models.TextChoices):
    SUCCESS = "success"
    DENIED = "denied"
    ERROR = "error"


class ActorType(models.TextChoices):
    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


class AuditEvent(models.Model):
    """`tenant_id` is never empty: the tenant acted in, or the tenant a platform action is about (a created or
    deleted tenant), or the public tenant's id for actions that belong to no tenant (a login naming no tenant,
    creating a user, pruning the log). It is a plain column, not a foreign key: rows outlive their tenant.

    `target` is the public id of what was acted on (`wf_…`, `run_…`, `key_…`, `ds_…`), or `tenant:<slug>` /
    `user:<name>` where there is no id, or for `access.denied` the permission that was refused.
    """

    id = models.CharField(primary_key=True, max_length=40)
    seq = models.BigIntegerField(unique=True, editable=False, db_default=NextVal(SEQUENCE))
    ts = models.DateTimeField()
    tenant_id = models.BigIntegerField()
    actor = models.CharField(max_length=200)
    actor_type = models.CharField(max_length=20, choices=ActorType.choices)
    channel = models.CharField(max_length=20)
    action = models.CharField(max_length=60)
    target = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict)
    chain_index = models.BigIntegerField(null=True, blank=True, editable=False)
    prev_seq = models.BigIntegerField(null=True, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, null=True, blank=True, editable=False)
    hash = models.CharField(max_length=64, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-seq"]
        # Each index is paid on every insert of the run hot path: these serve a tenant's newest rows, the
        # sealer's queue of unsealed rows, time filters (BRIN: tiny, rows arrive in time order) and the chain walk.
        indexes = [
            models.Index(fields=["tenant_id", "-seq"], name="audit_tenant_seq"),
            models.Index(fields=["seq"], condition=models.Q(hash__isnull=True), name="audit_unsealed"),
            BrinIndex(fields=["ts"], name="audit_ts_brin"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["chain_index"], condition=models.Q(chain_index__isnull=False), name="audit_chain_index_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.action}"


@dataclass(slots=True)
class AuditRow:
    """A row to insert: the columns an insert gives, by the model's attribute names. A plain object, not a model
    instance: one is built for every run on the hot path, where a model's __init__ cost more than it is worth."""

    id: str
    ts: datetime
    tenant_id: int
    actor: str
    actor_type: str
    channel: str
    action: str
    target: str
    outcome: str
    ip: str | None
    request_id: str
    details: dict
    seq: int | None = None  # set by the insert


_insert_plan: tuple[str, list[tuple[str, bool]]] | None = None


def insert_plan(conn) -> tuple[str, list[tuple[str, bool]]]:
    """(quoted column list, [(attribute, is JSON)]) of what an insert gives; the database fills `seq`, the
    sealer the chain columns. Built from the model, like apps/runs/models.py's run insert."""
    global _insert_plan
    if _insert_plan is None:
        fields = [f for f in AuditEvent._meta.concrete_fields if f.name not in SEAL_FIELDS and f.name != "seq"]
        columns = ", ".join(conn.ops.quote_name(f.column) for f in fields)
        _insert_plan = (columns, [(f.attname, isinstance(f, models.JSONField)) for f in fields])
    return _insert_plan


def insert_params(event: AuditRow, plan: list[tuple[str, bool]]) -> list:
    return [Jsonb(getattr(event, name)) if is_json else getattr(event, name) for name, is_json in plan]


def audit_insert(event: AuditRow, *, conn) -> None:
    """INSERT one row on `conn` (schema-qualified: the connection may be in a tenant's schema); sets its `seq`."""
    columns, plan = insert_plan(conn)
    placeholders = ", ".join(["%s"] * len(plan))
    with conn.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} ({columns}) VALUES ({placeholders}) RETURNING seq",  # noqa: S608 (model metadata)
            insert_params(event, plan),
        )
        event.seq = cursor.fetchone()[0]
