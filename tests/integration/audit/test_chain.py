"""The audit table is append-only (a trigger) and hash-chained (sealed after the fact); verify finds tampering."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.audit.chain import row_hash
from apps.audit.models import AuditEvent
from apps.audit.recorder import audit_record
from apps.audit.services import audit_prune, audit_prune_for_schedule, audit_seal
from apps.core.errors import PermissionDenied

pytestmark = pytest.mark.django_db

TABLE = "public.audit_auditevent"
GUARD = "audit_auditevent_append_only"


def _record(n: int = 1, **fields) -> list[AuditEvent]:
    return [
        audit_record(action="workflow.created", tenant_id=None, actor="system:test", target=f"wf_{i}", **fields) for i in range(n)
    ]


def _sql_fails(sql: str, params=(), *, declare: str | None = None) -> str:
    """Run `sql` in a savepoint, after declaring the setting `declare` as the sealer or pruner does, and return
    the database's error message (the test fails if there is none)."""
    # The setting must be declared inside the same savepoint as the statement that fails.
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cursor:  # noqa: PT012
        if declare:
            cursor.execute("SELECT set_config(%s, 'on', true)", [declare])
        cursor.execute(sql, params)
    return str(caught.value)


def _tamper(sql: str, params=()) -> None:
    """Change the table behind the trigger's back, as only the table's owner could (undone with the test)."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {GUARD}")
        cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {GUARD}")


def test_update_delete_and_truncate_are_rejected_sealed_or_not(audit_rows):
    sealed, unsealed = _record(2)
    audit_seal()

    for row in (sealed, unsealed):
        assert "append-only: UPDATE" in _sql_fails(f"UPDATE {TABLE} SET actor = 'someone-else' WHERE id = %s", [row.id])
        assert "append-only: DELETE" in _sql_fails(f"DELETE FROM {TABLE} WHERE id = %s", [row.id])
    assert "append-only: TRUNCATE" in _sql_fails(f"TRUNCATE {TABLE}")
    # Even declaring the sealer's or the pruner's setting: sealed rows cannot be resealed, unsealed ones not deleted.
    seal = "nexus.audit_seal"
    assert "append-only: UPDATE" in _sql_fails(
        f"UPDATE {TABLE} SET hash = repeat('0', 64) WHERE id = %s", [sealed.id], declare=seal
    )
    unsealed_now = _record()[0]
    assert "append-only: DELETE" in _sql_fails(
        f"DELETE FROM {TABLE} WHERE id = %s", [unsealed_now.id], declare="nexus.audit_prune"
    )
    assert "append-only: UPDATE" in _sql_fails(  # sealing that also edits the row
        f"UPDATE {TABLE} SET hash = repeat('0', 64), chain_index = 999999, actor = 'x' WHERE id = %s",
        [unsealed_now.id],
        declare=seal,
    )
    assert "append-only: UPDATE" in _sql_fails(  # sealing without declaring it
        f"UPDATE {TABLE} SET hash = repeat('0', 64), chain_index = 999999 WHERE id = %s", [unsealed_now.id]
    )
    assert AuditEvent.objects.get(id=sealed.id).actor == "system:test"


def test_sealing_chains_every_row_to_the_one_before(audit_rows):
    _record(3)

    assert audit_seal() >= 3
    rows = list(AuditEvent.objects.filter(chain_index__isnull=False).order_by("chain_index"))
    assert [r.chain_index for r in rows] == list(range(1, len(rows) + 1))
    for before, row in zip(rows, rows[1:], strict=False):
        assert (row.prev_seq, row.prev_hash) == (before.seq, before.hash)
    assert rows[0].prev_seq is None and rows[0].prev_hash is None
    assert audit_seal() == 0 and not AuditEvent.objects.filter(hash__isnull=True).exists()


def test_verify_passes_on_a_clean_log(nexus, audit_rows):
    _record(3)

    code, out, err = nexus("audit", "verify", "--json")

    assert code == 0, err
    result = json.loads(out)
    assert result["valid"] is True and result["anchor"] is None and "problem" not in result
    assert result["rows"] == AuditEvent.objects.count() and result["unsealed"] == 0


def test_verify_fails_naming_an_altered_row(nexus, audit_rows):
    rows = _record(3)
    audit_seal()
    _tamper(f'UPDATE {TABLE} SET details = \'{{"slug": "innocent"}}\' WHERE id = %s', [rows[1].id])

    code, out, err = nexus("audit", "verify", "--json")

    assert code == 6
    result = json.loads(out)
    assert result["valid"] is False
    assert (result["problem"]["seq"], result["problem"]["id"]) == (rows[1].seq, rows[1].id)
    assert "altered" in result["problem"]["reason"]
    assert f"seq {rows[1].seq} ({rows[1].id}" in err


def test_verify_fails_naming_the_row_after_a_deleted_one(nexus, audit_rows):
    rows = _record(3)
    audit_seal()
    _tamper(f"DELETE FROM {TABLE} WHERE id = %s", [rows[1].id])

    code, out, err = nexus("audit", "verify")

    assert code == 6
    assert f"audit chain broken at seq {rows[2].seq} ({rows[2].id}" in err
    assert f"links to seq {rows[1].seq}" in err and "deleted" in err


def test_verify_fails_when_a_rehashed_row_no_longer_links(audit_rows, admin_principal):
    from apps.audit.services import audit_verify

    rows = _record(3)
    audit_seal()
    forged = {**_row_dict(rows[1]), "actor": "someone-else"}
    _tamper(f"UPDATE {TABLE} SET actor = 'someone-else', hash = %s WHERE id = %s", [row_hash(forged), rows[1].id])

    result = audit_verify(principal=admin_principal)

    assert result.valid is False and result.problem["id"] == rows[2].id and "does not link" in result.problem["reason"]


def _row_dict(event: AuditEvent) -> dict:
    event = AuditEvent.objects.get(id=event.id)
    return {field.attname: getattr(event, field.attname) for field in AuditEvent._meta.concrete_fields}


def test_a_row_committed_after_a_newer_one_was_sealed_is_chained_after_it(audit_rows, admin_principal):
    """seq is taken at insert, visibility comes at commit: the late row joins the chain at its head."""
    from apps.audit.services import audit_verify

    inserted, release, done = threading.Event(), threading.Event(), {}

    def late_writer():
        try:
            with transaction.atomic():
                done["late"] = _record()[0]
                inserted.set()
                release.wait(30)
        finally:
            connection.close()

    writer = threading.Thread(target=late_writer)
    writer.start()
    assert inserted.wait(30)
    newer = _record()[0]
    audit_seal()
    release.set()
    writer.join(30)
    late = done["late"]
    audit_seal()

    late_row, newer_row = AuditEvent.objects.get(id=late.id), AuditEvent.objects.get(id=newer.id)
    assert late_row.seq < newer_row.seq and late_row.chain_index > newer_row.chain_index
    assert audit_verify(principal=admin_principal).valid is True


def test_pruning_keeps_the_chain_verifiable_and_records_itself(nexus, audit_rows):
    now = timezone.now()
    audit_seal()  # everything so far: older than the cutoff below
    young = _record(3, ts=now + timedelta(days=100))
    before = AuditEvent.objects.count()

    result = audit_prune_for_schedule(retention_days=365, now=now + timedelta(days=400))

    assert result["deleted"] == before - 3 > 0
    remaining = list(AuditEvent.objects.order_by("seq"))
    assert [r.id for r in remaining[:3]] == [r.id for r in young]
    pruned = remaining[-1]
    assert (pruned.action, pruned.actor, pruned.outcome) == ("audit.pruned", "system:retention", "success")
    assert pruned.details["deleted"] == result["deleted"] and pruned.details["anchor"] == result["anchor"]
    first = AuditEvent.objects.get(id=young[0].id)
    assert (first.prev_seq, first.prev_hash) == (result["anchor"]["seq"], result["anchor"]["hash"])

    code, out, err = nexus("audit", "verify", "--json")
    assert code == 0, err
    verified = json.loads(out)
    assert verified["valid"] is True and verified["rows"] == 4 and verified["anchor"] == result["anchor"]
    assert "append-only: DELETE" in _sql_fails(f"DELETE FROM {TABLE} WHERE id = %s", [first.id])


def test_deleting_the_oldest_rows_by_hand_is_not_mistaken_for_pruning(nexus, audit_rows):
    rows = _record(3)
    audit_seal()
    _tamper(f"DELETE FROM {TABLE} WHERE chain_index <= %s", [AuditEvent.objects.get(id=rows[0].id).chain_index])

    code, _, err = nexus("audit", "verify")

    assert code == 6 and f"({rows[1].id}" in err and "no audit.pruned row accounts for them" in err


def test_pruning_without_a_principal_is_the_schedules_alone(audit_rows):
    _record(2)
    with pytest.raises(PermissionDenied):
        audit_prune(principal=None, retention_days=1, now=timezone.now() + timedelta(days=400))
    assert [r.action for r in audit_rows()] == ["workflow.created", "workflow.created", "access.denied"]


def test_prune_with_nothing_old_deletes_nothing_and_records_nothing(audit_rows):
    _record(2)
    assert audit_prune_for_schedule(retention_days=365)["deleted"] == 0
    assert [r.action for r in audit_rows()] == ["workflow.created", "workflow.created"]


def test_verify_and_prune_are_for_platform_admins(nexus, audit_rows, make_user):
    make_user("alice", acme="owner")

    assert nexus("--tenant=acme", "--as=alice", "audit", "verify")[0] == 4
    assert nexus("--tenant=acme", "--as=alice", "audit", "prune", "--days=30")[0] == 4
    assert [(r.action, r.target) for r in audit_rows()] == [("access.denied", "audit.verify"), ("access.denied", "audit.prune")]


def test_the_scheduled_tasks_seal_and_prune(audit_rows):
    from apps.audit.tasks import prune_audit_log, seal_audit_log

    _record(2)
    assert seal_audit_log() >= 2
    assert prune_audit_log() == 0
