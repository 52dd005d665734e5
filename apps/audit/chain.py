"""The hash chain over audit rows: sealing, verifying and pruning it.

Why rows are sealed after the fact
    Chaining at insert time means every insert reads and locks the newest row to hash over it: at ~1,800 runs/s
    that one row serialises every writer, and the run hot path (one INSERT … RETURNING, one commit) would grow a
    read and a lock. So an insert only appends: the database numbers it (`seq`, a sequence default) and leaves
    the chain columns NULL. A sealer, `seal()`, run by Celery beat every few seconds and at the start of every
    `nexus audit verify|list`, takes a PostgreSQL advisory lock (one sealer at a time, never blocking writers),
    reads the unsealed rows in `seq` order and gives each `chain_index` (its position in the chain, dense:
    1, 2, 3, …), `prev_seq` and `prev_hash` (the row sealed just before it) and
    `hash = sha256(prev_hash || canonical JSON of the row)`. The canonical JSON covers every column but `hash`
    itself, read back from the database (so it is what is stored, not what some process meant to store).

Why the chain has its own position, not just `seq`
    `seq` is allocated when a row is inserted but the row becomes visible when its transaction commits, and those
    orders differ: a transaction holding seq 100 may commit after the one holding 101 was sealed. Refusing to seal
    past a gap does not work either, because a gap may also be a rolled-back transaction that will never fill it.
    So the chain is in *sealing* order: a late row is simply chained after the current head (its `prev_seq` may
    be larger than its own `seq`). Gaps in `seq` therefore mean nothing; gaps in `chain_index` always mean a
    deleted row, and `prev_seq`/`prev_hash` name exactly which one. `verify()` walks by `chain_index` in
    batches (an index keeps that cheap for any table size) and checks, for each row, that its position follows
    the previous one, that it links to the previous row's seq and hash, and that its own hash recomputes. The
    first row that fails is reported by seq and id.

What the database enforces
    A trigger (migration 0001) rejects every DELETE, every TRUNCATE and every UPDATE except the seal itself: the
    four chain columns going from NULL to a value, once, with every other column unchanged, in a transaction that
    declared `nexus.audit_seal` (the sealer's `set_config(…, true)`). Pruning declares `nexus.audit_prune` the same
    transaction-local way and may delete sealed rows only. Someone able to disable the trigger (the table's
    owner) can still rewrite history, but not without breaking the chain from that row on.

Pruning and the anchor
    `prune()` deletes a prefix of the chain: sealed rows older than the cutoff, stopping at the first row that is
    not (rows are sealed in roughly time order, so this deletes nearly everything old, and what it keeps is
    kept a little longer, never less). It always keeps the head, so the next sealed row still links to a row that
    exists. The new first row keeps its `prev_seq`/`prev_hash`, pointing at a deleted row: the caller records an
    `audit.pruned` row (in the same transaction) whose details hold that boundary as the anchor
    (`chain_index`, `seq`, `hash`). `verify()` accepts a chain that does not start at position 1 only when the
    newest sealed `audit.pruned` row names exactly that boundary; the anchor row is itself chained, so it cannot
    be edited to fit. Deleting old rows by hand (trigger disabled) leaves a start no prune accounts for.

Known limit
    Removing the newest rows (the tail) together with every row after them cannot be seen from inside the table;
    an external copy of the head hash (the sealer logs it) is the answer to that.
"""

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from django.db import connection, transaction

from apps.audit.models import TABLE
from apps.core.locks import AUDIT_CHAIN

logger = logging.getLogger("nexus.audit")

BATCH = 5000
HASHED = (
    "seq",
    "chain_index",
    "prev_seq",
    "id",
    "ts",
    "tenant_id",
    "actor",
    "actor_type",
    "channel",
    "action",
    "target",
    "outcome",
    "ip",
    "request_id",
    "details",
)
_COLUMNS = (*HASHED, "prev_hash", "hash")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM {TABLE}"  # noqa: S608 (constants)


def canonical(row: dict) -> bytes:
    """The bytes a row's hash covers: its columns as sorted, compact, ASCII-only JSON."""
    doc = {name: row[name] for name in HASHED}
    ts = row["ts"]
    doc["ts"] = ts.astimezone(UTC).isoformat(timespec="microseconds") if isinstance(ts, datetime) else ts
    details = row["details"]
    doc["details"] = json.loads(details) if isinstance(details, str) else details  # jsonb arrives as text
    doc["ip"] = None if row["ip"] is None else str(row["ip"])
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def row_hash(row: dict) -> str:
    return hashlib.sha256((row["prev_hash"] or "").encode() + canonical(row)).hexdigest()


def _fetch(cursor) -> list[dict]:
    return [dict(zip(_COLUMNS, values, strict=True)) for values in cursor.fetchall()]


def _lock(cursor, *, wait: bool) -> bool:
    if wait:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN])
        return True
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [AUDIT_CHAIN])
    return cursor.fetchone()[0]


def _head(cursor) -> tuple[int, int, str] | None:
    """(chain_index, seq, hash) of the newest sealed row."""
    cursor.execute(
        f"SELECT chain_index, seq, hash FROM {TABLE} WHERE chain_index IS NOT NULL ORDER BY chain_index DESC LIMIT 1"  # noqa: S608
    )
    return cursor.fetchone()


def _seal_batch(cursor, limit: int) -> int:
    """Seal up to `limit` rows after the head; the caller holds the chain lock in this transaction."""
    cursor.execute(f"{_SELECT} WHERE hash IS NULL ORDER BY seq LIMIT %s", [limit])
    rows = _fetch(cursor)
    if not rows:
        return 0
    index, prev_seq, prev_hash = _head(cursor) or (0, None, None)
    columns: tuple[list, ...] = ([], [], [], [], [])
    for row in rows:
        index += 1
        row.update(chain_index=index, prev_seq=prev_seq, prev_hash=prev_hash)
        row["hash"] = row_hash(row)
        for column, value in zip(columns, (row["seq"], index, prev_seq, prev_hash, row["hash"]), strict=True):
            column.append(value)
        prev_seq, prev_hash = row["seq"], row["hash"]
    cursor.execute("SELECT set_config('nexus.audit_seal', 'on', true)")
    cursor.execute(
        f"UPDATE {TABLE} a SET chain_index = v.chain_index, prev_seq = v.prev_seq, prev_hash = v.prev_hash, hash = v.hash"  # noqa: S608
        " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[])"
        " AS v(seq, chain_index, prev_seq, prev_hash, hash) WHERE a.seq = v.seq",
        list(columns),
    )
    cursor.execute("SELECT set_config('nexus.audit_seal', 'off', true)")
    logger.info("audit sealed %d rows; head chain_index=%d seq=%d hash=%s", len(rows), index, prev_seq, prev_hash)
    return len(rows)


def seal(*, wait: bool = True, batch: int = BATCH) -> int:
    """Seal every row visible now, `batch` rows per transaction. With `wait=False` a sealer already at work
    is left to it (returns 0 at once). Returns the number of rows sealed."""
    sealed = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            if not _lock(cursor, wait=wait):
                return sealed
            done = _seal_batch(cursor, batch)
        sealed += done
        if done < batch:
            return sealed


@dataclass(frozen=True)
class PruneResult:
    deleted: int
    anchor: dict | None  # the last deleted row: {"chain_index", "seq", "hash"}


def prune(*, cutoff: datetime) -> PruneResult:
    """Delete the sealed prefix of the chain older than `cutoff` (see the module docstring). Run it inside the
    transaction that records `audit.pruned` with the returned anchor."""
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, wait=True)
        while _seal_batch(cursor, BATCH) == BATCH:
            pass
        head = _head(cursor)
        if head is None:
            return PruneResult(deleted=0, anchor=None)
        cursor.execute(
            f"SELECT chain_index FROM {TABLE} WHERE chain_index IS NOT NULL AND ts >= %s ORDER BY chain_index LIMIT 1",  # noqa: S608
            [cutoff],
        )
        young = cursor.fetchone()
        boundary = min(young[0] - 1 if young else head[0], head[0] - 1)
        cursor.execute(f"SELECT chain_index, seq, hash FROM {TABLE} WHERE chain_index = %s", [boundary])  # noqa: S608
        last = cursor.fetchone()
        if last is None:  # nothing old enough, or already pruned up to here
            return PruneResult(deleted=0, anchor=None)
        cursor.execute("SELECT set_config('nexus.audit_prune', 'on', true)")
        cursor.execute(f"DELETE FROM {TABLE} WHERE chain_index IS NOT NULL AND chain_index <= %s", [boundary])  # noqa: S608
        deleted = cursor.rowcount
        cursor.execute("SELECT set_config('nexus.audit_prune', 'off', true)")
    return PruneResult(deleted=deleted, anchor={"chain_index": last[0], "seq": last[1], "hash": last[2]})


@dataclass(frozen=True)
class Verification:
    valid: bool
    rows: int  # sealed rows checked
    unsealed: int  # rows committed after the seal this check began with
    anchor: dict | None  # the prune boundary the chain starts after, or None from its first row
    problem: dict | None  # the first bad row: {"seq", "id", "chain_index", "reason"}

    def as_dict(self) -> dict:
        data = asdict(self)
        if self.problem is None:
            data.pop("problem")
        return data


def _problem(row: dict, reason: str) -> dict:
    return {"seq": row["seq"], "id": row["id"], "chain_index": row["chain_index"], "reason": reason}


def _latest_anchor(cursor) -> dict | None:
    cursor.execute(
        f"SELECT details FROM {TABLE} WHERE chain_index IS NOT NULL AND action = 'audit.pruned'"  # noqa: S608
        " ORDER BY chain_index DESC LIMIT 1"
    )
    found = cursor.fetchone()
    if found is None:
        return None
    details = json.loads(found[0]) if isinstance(found[0], str) else found[0]
    anchor = details.get("anchor") if isinstance(details, dict) else None
    return anchor if isinstance(anchor, dict) else None


def verify(*, batch: int = BATCH) -> Verification:
    """Seal, then walk the whole chain from its first row (or the prune anchor) to its head."""
    seal(wait=True)
    checked = 0
    anchor = None
    with connection.cursor() as cursor:
        cursor.execute(f"{_SELECT} WHERE chain_index IS NOT NULL ORDER BY chain_index LIMIT 1")  # noqa: S608
        first = _fetch(cursor)
        if first:
            row = first[0]
            if row["chain_index"] == 1 and row["prev_seq"] is None and row["prev_hash"] is None:
                position, prev_seq, prev_hash = 0, None, None
            else:
                anchor = _latest_anchor(cursor)
                expected = {"chain_index": row["chain_index"] - 1, "seq": row["prev_seq"], "hash": row["prev_hash"]}
                if anchor is None or {key: anchor.get(key) for key in expected} != expected:
                    reason = (
                        f"the chain starts at position {row['chain_index']}: the rows before it (up to seq {row['prev_seq']})"
                        " are missing and no audit.pruned row accounts for them"
                    )
                    return Verification(False, 0, _unsealed(cursor), anchor, _problem(row, reason))
                position, prev_seq, prev_hash = anchor["chain_index"], anchor["seq"], anchor["hash"]
            last = position
            while True:
                cursor.execute(f"{_SELECT} WHERE chain_index > %s ORDER BY chain_index LIMIT %s", [last, batch])  # noqa: S608
                rows = _fetch(cursor)
                for row in rows:
                    problem = _check(row, position=position, prev_seq=prev_seq, prev_hash=prev_hash)
                    if problem is not None:
                        return Verification(False, checked, _unsealed(cursor), anchor, _problem(row, problem))
                    checked += 1
                    position, prev_seq, prev_hash = row["chain_index"], row["seq"], row["hash"]
                if len(rows) < batch:
                    break
                last = position
        unsealed = _unsealed(cursor)
    return Verification(True, checked, unsealed, anchor, None)


def _check(row: dict, *, position: int, prev_seq: int | None, prev_hash: str | None) -> str | None:
    if row["chain_index"] != position + 1:
        return f"chain position {position + 1} is missing before this row (it links to seq {row['prev_seq']}): a row was deleted"
    if row["prev_seq"] != prev_seq or row["prev_hash"] != prev_hash:
        return f"does not link to the row before it (seq {prev_seq}): a row was replaced"
    if row_hash(row) != row["hash"]:
        return "its hash does not match its contents: the row was altered"
    return None


def _unsealed(cursor) -> int:
    cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE hash IS NULL")  # noqa: S608
    return cursor.fetchone()[0]
