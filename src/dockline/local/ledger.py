"""SQLiteLedger: the ledger port on the local SQLite file.

Claims are leases on the ``files`` row, taken in ``BEGIN IMMEDIATE`` so two
``dockline run`` processes never hold the same object version. The lease is kept
after ``settle`` until ``mark_notified``, so only one process sends a settled
file's notification (the outbox). A lease whose owner process is gone (kill -9) is
taken over at once; any other lease after ``lease_seconds``.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Sequence

import orjson

from dockline.errors import BusyError
from dockline.ledger import LedgerBase, Verdicts
from dockline.local import counters, item_writes
from dockline.local.db import Database
from dockline.local.item_writes import identity as _id
from dockline.local.item_writes import rows_of_files as _rows
from dockline.models import BadRecord, ConflictPolicy, ObjectRef, Outcome, Record, Status
from dockline.ports import Claim, Unclaimed

_HOST = socket.gethostname()

_STATE_COLUMNS = (
    "status, error, pk, attempts, records, duplicates, conflicts, skipped, notified,"
    " lease_owner, lease_until, skipped_total, generation, dropped"
)
_STATE = "SELECT " + _STATE_COLUMNS + " FROM files"  # noqa: S608 (ours) -- what begin decides on
_CLAIM = (
    "INSERT INTO files (bucket, key, version, status, attempts, size, sequencer, event_time,"
    " received_at, updated_at, lease_owner, lease_until, started_at) VALUES (?, ?, ?, 'processing', 1,"
    " ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (bucket, key, version) DO UPDATE SET status = 'processing',"
    " attempts = attempts + 1, updated_at = excluded.updated_at, lease_owner = excluded.lease_owner,"
    " lease_until = excluded.lease_until, started_at = excluded.started_at,"
    " records_done = 0, bytes_done = 0"  # progress is per attempt
)
# settle_batch: a version this ledger claimed for a first run (generation 0: a reprocess's
# run settles through ``settle``, which also sweeps its stale items).
_SETTLE_CLAIMED = (
    "UPDATE files SET status = ?, error = ?, pk = ?, attempts = MAX(attempts, ?), records = ?, duplicates = ?,"
    " conflicts = ?, skipped = ?, skipped_total = ?, dropped = ?, updated_at = ?, notified = ?,"
    " lease_owner = ?, lease_until = ?"
    " WHERE bucket = ? AND key = ? AND version = ? AND status = 'processing' AND generation = 0"
)
_MARK_NOTIFIED = (
    "UPDATE files SET notified = 1, lease_owner = NULL, lease_until = NULL WHERE bucket = ? AND key = ? AND version = ?"
)


def _owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return True  # another machine's lease: trust its expiry time only
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def outcome_from_row(ref: ObjectRef, row: sqlite3.Row | tuple[object, ...]) -> Outcome:
    status, error, pk, attempts, records, duplicates, conflicts, skipped, notified = row[:9]
    bad = tuple(BadRecord(int(s["index"]), str(s["reason"])) for s in orjson.loads(str(skipped or "[]")))
    return Outcome(
        ref=ref,
        status=Status(str(status)),
        error=str(error) if error is not None else None,
        pk=str(pk) if pk is not None else None,
        attempts=int(str(attempts)),
        records=int(str(records)),
        duplicates=int(str(duplicates)),
        conflicts=int(str(conflicts)),
        skipped=bad,
        notified=bool(notified),
        skipped_total=int(str(row[11])) if len(row) > 11 else len(bad),
        reprocessed=bool(row[12]) if len(row) > 12 else False,
        dropped=int(str(row[13])) if len(row) > 13 else 0,
    )


class SQLiteLedger(LedgerBase):
    def __init__(self, db: Database, *, lease_seconds: float = 300.0) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self.owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Versions this ledger claimed that a reprocess reopened (generation > 0), until settled.
        self._reprocessing: set[tuple[str, str, str]] = set()

    def begin(self, ref: ObjectRef, *, now: str) -> Outcome | None:
        with self.db.transaction() as conn:
            row = conn.execute(_STATE + " WHERE bucket = ? AND key = ? AND version = ?", _id(ref)).fetchone()
            prior = self._prior(conn, ref, row)
            if prior is not None:
                return prior
            conn.execute(_CLAIM, self._claim_params(ref, now, time.time() + self.lease_seconds))
        return None

    def begin_batch(self, refs: Sequence[ObjectRef], *, now: str) -> list[Claim]:
        """``begin`` for many versions: one query for their rows, one statement claims those
        to run; the same decision per version as ``begin`` (``_prior``). A version a
        reprocess reopened is left unclaimed: its run is a long one, and leased with a
        batch it would sit held while the others run (another process could take it)."""
        claims: list[Claim] = []
        until = time.time() + self.lease_seconds
        with self.db.transaction() as conn:
            rows = _rows(conn, _STATE_COLUMNS, refs)
            fresh = []
            for ref in refs:
                row = rows.get(_id(ref))
                if row is not None and row[12] and not Status(str(row[0])).is_final:
                    claims.append(Unclaimed())
                    continue
                try:
                    prior = self._prior(conn, ref, row)
                except BusyError as exc:
                    claims.append(exc)
                    continue
                claims.append(prior)
                if prior is None:
                    fresh.append(self._claim_params(ref, now, until))
            conn.executemany(_CLAIM, fresh)
        return claims

    def _prior(self, conn: sqlite3.Connection, ref: ObjectRef, row: tuple[object, ...] | None) -> Outcome | None:
        """What ``begin`` makes of the version's row (``_STATE``): its settled Outcome, None
        to claim it. Raises BusyError while another live worker holds it."""
        if row is None:
            return None
        status, notified, owner, until = Status(str(row[0])), bool(row[8]), row[9], row[10]
        held = (
            owner is not None
            and owner != self.owner
            and until is not None
            and float(str(until)) > time.time()
            and _owner_alive(str(owner))
        )
        if status.is_final:
            if notified or not status.owes_notification:
                return outcome_from_row(ref, row)
            # The outbox: its notification is owed. Whoever settled it holds the lease
            # until it is sent, so only one process ever sends it.
            if held:
                raise BusyError(f"{ref.key}: its notification is being sent by {owner}")
            conn.execute(
                "UPDATE files SET lease_owner = ?, lease_until = ? WHERE bucket = ? AND key = ? AND version = ?",
                (self.owner, time.time() + self.lease_seconds, ref.bucket, ref.key, ref.version),
            )
            return outcome_from_row(ref, row)
        if status is Status.PROCESSING and held:
            raise BusyError(f"{ref.key} is being processed by {owner}")
        if row[12]:
            self._reprocessing.add(_id(ref))
        return None

    def _claim_params(self, ref: ObjectRef, now: str, until: float) -> tuple[object, ...]:
        return (
            ref.bucket,
            ref.key,
            ref.version,
            ref.size,
            ref.sequencer,
            ref.event_time,
            now,
            now,
            self.owner,
            until,
            now,
        )

    def reprocessing(self, ref: ObjectRef) -> bool:
        return _id(ref) in self._reprocessing

    def progress(self, ref: ObjectRef, *, records: int, bytes_done: int) -> None:
        """Record how far this attempt got, for readers in other processes (files list,
        status). One UPDATE by the unique key: inside a group it joins the open chain, so
        it commits with the batch just written and costs no commit of its own."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE files SET records_done = ?, bytes_done = ?"
                " WHERE bucket = ? AND key = ? AND version = ? AND lease_owner = ?",
                (records, bytes_done, ref.bucket, ref.key, ref.version, self.owner),
            )

    def register(self, ref: ObjectRef, *, now: str) -> None:
        """Record a version as pending (seen, not yet claimed), if it is not known yet."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO files (bucket, key, version, status, size, sequencer, event_time, received_at,"
                " updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (ref.bucket, ref.key, ref.version, ref.size, ref.sequencer, ref.event_time, now, now),
            )

    def _store(self, ref: ObjectRef, records: Sequence[Record], policy: ConflictPolicy, now: str) -> Verdicts:
        with self.db.transaction() as conn:
            return item_writes.store(conn, ref, records, policy, now)

    def _store_batch(
        self, batch: Sequence[tuple[ObjectRef, Sequence[Record], ConflictPolicy]], now: str
    ) -> list[Verdicts]:
        with self.db.transaction() as conn:
            return item_writes.store_batch(conn, batch, now)

    def settle(self, outcome: Outcome, *, now: str) -> bool:
        ref = outcome.ref
        skipped = _skipped_json(outcome)
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT status, notified, attempts, id, generation FROM files"
                " WHERE bucket = ? AND key = ? AND version = ?",
                (ref.bucket, ref.key, ref.version),
            ).fetchone()
            if row is not None and Status(row[0]).is_final:
                return not row[1]
            attempts = max(outcome.attempts, row[2] if row is not None else 1)
            if row is not None and row[4]:
                # A reprocess settles: what its run did not write again (a record now
                # skipped, an id now elsewhere) goes, in the same commit as the state.
                conn.execute("DELETE FROM items WHERE file_id = ? AND generation < ?", (row[3], row[4]))
                self._reprocessing.discard(_id(ref))
            owes_nothing = not outcome.status.owes_notification
            conn.execute(
                "INSERT INTO files (bucket, key, version, status, error, pk, attempts, records, duplicates,"
                " conflicts, skipped, skipped_total, size, sequencer, event_time, received_at, updated_at, notified,"
                " lease_owner, lease_until, dropped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?)"
                " ON CONFLICT (bucket, key, version) DO UPDATE SET status = excluded.status,"
                " error = excluded.error, pk = excluded.pk, attempts = excluded.attempts,"
                " records = excluded.records, duplicates = excluded.duplicates, conflicts = excluded.conflicts,"
                " skipped = excluded.skipped, skipped_total = excluded.skipped_total, dropped = excluded.dropped,"
                " updated_at = excluded.updated_at, notified = excluded.notified,"
                " lease_owner = excluded.lease_owner, lease_until = excluded.lease_until",
                (
                    ref.bucket,
                    ref.key,
                    ref.version,
                    str(outcome.status),
                    outcome.error,
                    outcome.pk,
                    attempts,
                    outcome.records,
                    outcome.duplicates,
                    outcome.conflicts,
                    skipped,
                    outcome.skipped_total,
                    ref.size,
                    ref.sequencer,
                    ref.event_time,
                    now,
                    now,
                    int(owes_nothing),  # the outbox: open while a notification is owed
                    # Keep the lease while a notification is owed (see begin); a duplicate owes none.
                    None if owes_nothing else self.owner,
                    None if owes_nothing else time.time() + self.lease_seconds,
                    outcome.dropped,
                ),
            )
        return not owes_nothing

    def settle_batch(self, outcomes: Sequence[Outcome], *, now: str) -> list[bool]:
        """``settle`` for versions this ledger claimed for a first run, in one statement;
        should any not be such (reopened, settled meanwhile), each goes through ``settle``,
        which is idempotent, in the same transaction."""
        until = time.time() + self.lease_seconds
        params = []
        for o in outcomes:
            ref, owed = o.ref, o.status.owes_notification
            params.append(
                (
                    str(o.status),
                    o.error,
                    o.pk,
                    o.attempts,
                    o.records,
                    o.duplicates,
                    o.conflicts,
                    _skipped_json(o),
                    o.skipped_total,
                    o.dropped,
                    now,
                    int(not owed),
                    self.owner if owed else None,
                    until if owed else None,
                    ref.bucket,
                    ref.key,
                    ref.version,
                )
            )
        with self.db.transaction() as conn:
            before = conn.total_changes
            conn.executemany(_SETTLE_CLAIMED, params)
            if conn.total_changes - before == len(params):
                return [o.status.owes_notification for o in outcomes]
            return [self.settle(o, now=now) for o in outcomes]

    def mark_notified(self, outcome: Outcome) -> None:
        ref = outcome.ref
        with self.db.transaction() as conn:
            conn.execute(_MARK_NOTIFIED, (ref.bucket, ref.key, ref.version))

    def mark_notified_batch(self, outcomes: Sequence[Outcome]) -> None:
        with self.db.transaction() as conn:
            conn.executemany(_MARK_NOTIFIED, [_id(o.ref) for o in outcomes])

    def discard(self, ref: ObjectRef) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM items WHERE file_id IN"
                " (SELECT id FROM files WHERE bucket = ? AND key = ? AND version = ?)",
                (ref.bucket, ref.key, ref.version),
            )

    def reprocess(self, ref: ObjectRef, *, now: str) -> bool:
        """Reopen a settled version whose outbox is closed for a reprocess: pending again, so
        any run takes it (also after a crash), one generation up, so its items are stale."""
        with self.db.transaction() as conn:
            where = "bucket = ? AND key = ? AND version = ? AND (notified = 1 OR status IN ('duplicate', 'superseded'))"
            counters.retire_files(conn, where, (ref.bucket, ref.key, ref.version))  # the metrics keep its share
            cursor = conn.execute(
                # The old run's counts go (status and progress must not show them as this run's).
                "UPDATE files SET status = 'pending', error = NULL, notified = 0, updated_at = ?,"
                " generation = generation + 1, lease_owner = NULL, lease_until = NULL, pk = NULL,"
                " records = 0, duplicates = 0, conflicts = 0, skipped = NULL, skipped_total = 0, dropped = 0"
                " WHERE bucket = ? AND key = ? AND version = ?"
                " AND status IN ('processed', 'failed', 'duplicate', 'conflict', 'superseded')"
                " AND (notified = 1 OR status IN ('duplicate', 'superseded'))",
                (now, ref.bucket, ref.key, ref.version),
            )
            return cursor.rowcount == 1

    def reopen(self, ref: ObjectRef, *, now: str) -> bool:
        """Forget the final state of a failed version so a redrive processes it again."""
        with self.db.transaction() as conn:
            where = "bucket = ? AND key = ? AND version = ? AND status = 'failed'"
            counters.retire_files(conn, where, (ref.bucket, ref.key, ref.version))  # the metrics keep its share
            cursor = conn.execute(
                "UPDATE files SET status = 'pending', error = NULL, notified = 0, updated_at = ?,"
                " lease_owner = NULL, lease_until = NULL"
                " WHERE bucket = ? AND key = ? AND version = ? AND status = 'failed'",
                (now, ref.bucket, ref.key, ref.version),
            )
            return cursor.rowcount == 1


def _skipped_json(outcome: Outcome) -> str:
    if not outcome.skipped:
        return "[]"
    return orjson.dumps([{"index": b.index, "reason": b.reason} for b in outcome.skipped]).decode()
