"""Writing items: the SQL that inserts a file's records into ``items`` and judges the ids
already taken (``ledger.judge``), for one file (``store``) or a batch of files
(``store_batch``). Called inside the ledger's transaction; ``local/ledger.py`` holds the
file states (claims, leases, settling, the outbox).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from operator import attrgetter

from dockline.ledger import Existing, Verdict, Verdicts, judge
from dockline.models import ConflictPolicy, ObjectRef, Record
from dockline.routes import DEFAULT_ROUTE

_INSERT = (
    "INSERT INTO items (pk, payload, content_hash, file_id, record_index, processed_at, route)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_OVERSIZED = attrgetter("oversized")
_INLINE_AT_LEAST = 64  # records in a batch; below, the cached statement with 7 bound values
_PK_PAYLOAD_INDEX = attrgetter("pk", "canonical", "index")


def _inline_insert(file_id: int, now: str, route: str | None) -> str | None:
    """``_INSERT`` for a batch of inline records (``ON CONFLICT DO NOTHING``), with what all
    its rows share (the file, the time, the route, no hash) written into the statement:
    binding 3 values a row instead of 7 saves ~1 s per million rows (issue 11, NDJSON). None
    when a text cannot be a literal (a NUL in it)."""
    if "\x00" in now or (route is not None and "\x00" in route):
        return None
    texts = ["NULL" if text is None else "'" + text.replace("'", "''") + "'" for text in (now, route)]
    return (
        "INSERT INTO items (pk, payload, content_hash, file_id, record_index, processed_at, route)"  # noqa: S608 (ours)
        f" VALUES (?, ?, NULL, {int(file_id)}, ?, {texts[0]}, {texts[1]}) ON CONFLICT (pk) DO NOTHING"
    )


# A reprocess's run (generation > 0) takes over the items its own version's earlier runs
# wrote, in the insert itself: ``judge``'s stale rule, done by SQLite for the whole batch.
# Everything else that is taken (another file's item, one this run wrote) is left to
# ``_judge_taken`` as in a first run.
_INSERT_GENERATION = (
    "INSERT INTO items (pk, payload, content_hash, file_id, record_index, processed_at, route, generation)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pk) DO UPDATE SET payload = excluded.payload,"
    " content_hash = excluded.content_hash, record_index = excluded.record_index,"
    " processed_at = excluded.processed_at, route = excluded.route, generation = excluded.generation"
    " WHERE items.file_id = excluded.file_id AND items.generation < excluded.generation"
)
_EXISTING = (
    "SELECT i.payload, i.content_hash, f.bucket, f.key, f.version, f.sequencer, f.event_time, f.id,"
    " i.generation, f.generation FROM items i JOIN files f ON f.id = i.file_id WHERE i.pk = ?"
)


def store(
    conn: sqlite3.Connection, ref: ObjectRef, records: Sequence[Record], policy: ConflictPolicy, now: str
) -> Verdicts:
    """Insert ``records`` (distinct pks) of ``ref``; None when all were new, else a verdict each."""
    file_id, generation = _file_id(conn, ref, now)
    # Rows stay narrow: the object's bucket, key and version live once, in files; a
    # file has one route, and the default route is NULL (as in rows from before routes).
    route = records[0].route if records and records[0].route != DEFAULT_ROUTE else None
    before = conn.total_changes
    # A big file's usual batch. Its statement is new text each time (the time changes):
    # worth its compile for many rows, not for a small file's one (kept cached, bound).
    common = len(records) >= _INLINE_AT_LEAST and not generation and not any(map(_OVERSIZED, records))
    inline = _inline_insert(file_id, now, route) if common else None
    if inline is not None:
        conn.executemany(inline, map(_PK_PAYLOAD_INDEX, records))
        if conn.total_changes - before == len(records):
            return None
    rows = _rows_for(records, file_id, now, route)
    if inline is None:
        if generation:
            conn.executemany(_INSERT_GENERATION, [(*row, generation) for row in rows])
        else:
            conn.executemany(_INSERT + " ON CONFLICT (pk) DO NOTHING", rows)
        if conn.total_changes - before == len(rows):  # the common case: all new
            return None
    return _judge_taken(conn, ref, records, rows, policy)


def store_batch(
    conn: sqlite3.Connection, batch: Sequence[tuple[ObjectRef, Sequence[Record], ConflictPolicy]], now: str
) -> list[Verdicts]:
    """One query for the versions' ids, one ``executemany`` for all their records; when it
    skipped any pk, every file's records are judged in order (``_judge_taken``), as
    separate ``store`` calls would have judged them."""
    ids = rows_of_files(conn, "id, generation", [ref for ref, _, _ in batch])
    if any(ids.get(identity(ref), (0, 1))[1] for ref, _, _ in batch):  # unknown, or a reprocess's
        return [store(conn, ref, records, policy, now) for ref, records, policy in batch]
    rows_per_file = []
    for ref, records, _ in batch:
        file_id = int(str(ids[identity(ref)][0]))
        route = records[0].route if records and records[0].route != DEFAULT_ROUTE else None
        rows_per_file.append(_rows_for(records, file_id, now, route))
    rows = [row for file_rows in rows_per_file for row in file_rows]
    before = conn.total_changes
    conn.executemany(_INSERT + " ON CONFLICT (pk) DO NOTHING", rows)
    if conn.total_changes - before == len(rows):  # the common case: all new
        return [None] * len(batch)
    return [
        _judge_taken(conn, ref, records, file_rows, policy)
        for (ref, records, policy), file_rows in zip(batch, rows_per_file, strict=True)
    ]


def _rows_for(records: Sequence[Record], file_id: int, now: str, route: str | None) -> list[tuple[object, ...]]:
    """``_INSERT``'s rows: an oversized record keeps its content hash, not its payload."""
    return [
        (r.pk, None, r.content_hash, file_id, r.index, now, route)
        if r.oversized
        else (r.pk, r.canonical, None, file_id, r.index, now, route)
        for r in records
    ]


def _file_id(conn: sqlite3.Connection, ref: ObjectRef, now: str) -> tuple[int, int]:
    """The version's files.id and generation (how often a reprocess reopened it)."""
    row = conn.execute(
        "SELECT id, generation FROM files WHERE bucket = ? AND key = ? AND version = ?",
        (ref.bucket, ref.key, ref.version),
    ).fetchone()
    if row is not None:
        return int(row[0]), int(row[1])
    cursor = conn.execute(
        "INSERT INTO files (bucket, key, version, status, size, sequencer, event_time, received_at, updated_at)"
        " VALUES (?, ?, ?, 'processing', ?, ?, ?, ?, ?)",
        (ref.bucket, ref.key, ref.version, ref.size, ref.sequencer, ref.event_time, now, now),
    )
    return int(cursor.lastrowid or 0), 0


def _judge_taken(
    conn: sqlite3.Connection,
    ref: ObjectRef,
    records: Sequence[Record],
    rows: Sequence[tuple[object, ...]],
    policy: ConflictPolicy,
) -> Verdicts:
    """Verdicts after an insert that skipped some pks: those rows are someone's (or ours)."""
    verdicts: list[tuple[Verdict, str]] = []
    for record, row in zip(records, rows, strict=True):
        payload, content_hash, bucket, key, version, sequencer, event_time, file_id, item_gen, file_gen = conn.execute(
            _EXISTING, (record.pk,)
        ).fetchone()
        existing_hash = content_hash or hashlib.sha256(payload.encode()).hexdigest()
        stale = file_id == row[3] and item_gen < file_gen
        if file_id == row[3] and existing_hash == record.content_hash and not stale:
            verdicts.append((Verdict.WRITTEN, ""))  # inserted just now, or by this run before
            continue
        existing = Existing(bucket, key, version, existing_hash, sequencer, event_time, stale=stale)
        verdict, origin = judge(ref, record, existing, policy)
        if verdict is Verdict.REPLACE:
            conn.execute("DELETE FROM items WHERE pk = ?", (record.pk,))
            if stale:
                conn.execute(_INSERT_GENERATION, (*row, file_gen))
            else:
                conn.execute(_INSERT, row)
            verdict = Verdict.WRITTEN
        verdicts.append((verdict, origin))
    return verdicts


def identity(ref: ObjectRef) -> tuple[str, str, str]:
    return (ref.bucket, ref.key, ref.version)


_KEYS_PER_QUERY = 500  # well under SQLite's bound on variables


def rows_of_files(
    conn: sqlite3.Connection, columns: str, refs: Sequence[ObjectRef]
) -> dict[tuple[str, str, str], tuple[object, ...]]:
    """``columns`` of the files rows of ``refs``, by (bucket, key, version): one query per
    bucket and 500 keys (a key's other versions come along and are left out)."""
    wanted = {identity(ref) for ref in refs}
    keys_by_bucket: dict[str, list[str]] = {}
    for bucket, key, _ in wanted:
        keys_by_bucket.setdefault(bucket, []).append(key)
    found: dict[tuple[str, str, str], tuple[object, ...]] = {}
    for bucket, keys in keys_by_bucket.items():
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[start : start + _KEYS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))  # columns: our constants; the keys are parameters
            sql = f"SELECT key, version, {columns} FROM files WHERE bucket = ? AND key IN ({marks})"  # noqa: S608
            for row in conn.execute(sql, (bucket, *chunk)):
                found_id = (bucket, str(row[0]), str(row[1]))
                if found_id in wanted:
                    found[found_id] = tuple(row[2:])
    return found
