"""Monotonic counters in the SQLite file, kept by the database itself.

Prometheus counters must only go up, across processes and restarts. The tables a status
reads cannot give that: a redrive turns a failed file into a processed one, ``prune``
deletes deliveries. So every transition that a counter counts is counted where it
happens, by a trigger on the row that changes:

- a ``files`` row reaching a final state adds 1 to ``files{status}``, its records to
  ``records``, its size to ``bytes``, and its duration (``updated_at - started_at``: the
  attempt that settled it) to the histogram ``file_duration_seconds``;
- a ``deliveries`` row becoming ``delivered`` or ``failed`` adds 1 to ``deliveries{outcome}``;
- a new ``dead_letters`` row (not a re-send of one that is there) adds 1 to ``dead_letters``.

A trigger runs inside the statement that fired it, so a count commits with the change it
counts or not at all (a crash, a full disk), costs no commit of its own, and is kept by
every process and every command that writes the file, whoever wrote the code. This module
knows no Prometheus: ``local/metrics.py`` turns ``read`` into metric families.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from dockline.models import Status

# Upper bounds of the duration histogram, in seconds: a 1 KB file takes milliseconds, a
# 2M-record file 15-20 s in watch mode, a 9M-record one minutes.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

# Columns of ``files`` for progress: the attempt's start, and what it has done so far.
# Added in place (NULL / 0 in old rows), like db._DELIVERY_COLUMNS.
PROGRESS_COLUMNS = {
    "started_at": "TEXT",  # ISO time the current attempt claimed the file (begin)
    "records_done": "INTEGER NOT NULL DEFAULT 0",  # records handed to the ledger by this attempt
    "bytes_done": "INTEGER NOT NULL DEFAULT 0",  # bytes of the object read by this attempt
}

_FINAL_LIST = "('processed', 'failed', 'duplicate', 'conflict', 'superseded')"
assert {s.strip("' ") for s in _FINAL_LIST.strip("()").split(",")} == {str(s) for s in Status if s.is_final}

TABLES = """
CREATE TABLE IF NOT EXISTS counters (
    name TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    value REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (name, label)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS file_durations (  -- cumulative histogram buckets: files with duration <= le
    le REAL PRIMARY KEY,
    files INTEGER NOT NULL DEFAULT 0
);
"""

# What a file reaching a final state adds. The duration is that of the attempt that settled
# it (begin wrote started_at); SQLite has no variables, so it is written out where used,
# and INSERT ... SELECT ... WHERE also keeps the upsert's ON from being read as a join's.
_SETTLED_BODY = """
INSERT INTO counters (name, label, value) VALUES ('files', NEW.status, 1)
    ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
INSERT INTO counters (name, label, value) VALUES ('records', '', NEW.records)
    ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
INSERT INTO counters (name, label, value) VALUES ('bytes', '', coalesce(NEW.size, NEW.bytes_done, 0))
    ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
UPDATE file_durations SET files = files + 1 WHERE NEW.started_at IS NOT NULL
    AND le >= (julianday(NEW.updated_at) - julianday(NEW.started_at)) * 86400.0;
INSERT INTO counters (name, label, value) SELECT 'file_duration_seconds_count', '', 1
    WHERE NEW.started_at IS NOT NULL
    ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
INSERT INTO counters (name, label, value)
    SELECT 'file_duration_seconds_sum', '', (julianday(NEW.updated_at) - julianday(NEW.started_at)) * 86400.0
    WHERE NEW.started_at IS NOT NULL
    ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
"""

_DELIVERY_BODY = """
INSERT INTO counters (name, label, value) VALUES ('deliveries', NEW.status, 1)
    ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
"""

TRIGGERS = {
    "count_settled_insert": "CREATE TRIGGER IF NOT EXISTS count_settled_insert AFTER INSERT ON files"
    " WHEN NEW.status IN " + _FINAL_LIST + " BEGIN" + _SETTLED_BODY + "END",
    "count_settled_update": "CREATE TRIGGER IF NOT EXISTS count_settled_update AFTER UPDATE OF status ON files"
    " WHEN NEW.status IN " + _FINAL_LIST + " AND OLD.status IS NOT NEW.status BEGIN" + _SETTLED_BODY + "END",
    "count_delivery_update": "CREATE TRIGGER IF NOT EXISTS count_delivery_update AFTER UPDATE OF status"
    " ON deliveries WHEN NEW.status IN ('delivered', 'failed') AND OLD.status IS NOT NEW.status"
    " BEGIN" + _DELIVERY_BODY + "END",
    "count_delivery_insert": "CREATE TRIGGER IF NOT EXISTS count_delivery_insert AFTER INSERT ON deliveries"
    " WHEN NEW.status IN ('delivered', 'failed') BEGIN" + _DELIVERY_BODY + "END",
    # BEFORE: an INSERT OR REPLACE of a letter already there (its outbox sent again after a
    # crash) is the same dead letter, not a new one.
    "count_dead_letter": """CREATE TRIGGER IF NOT EXISTS count_dead_letter BEFORE INSERT ON dead_letters
WHEN NOT EXISTS (SELECT 1 FROM dead_letters WHERE id = NEW.id) BEGIN
INSERT INTO counters (name, label, value) VALUES ('dead_letters', '', 1)
    ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
END""",
}


def installed(names: set[str], columns: set[str]) -> bool:
    """Are the counters, their triggers and the progress columns all there?"""
    return {"counters", "file_durations", *TRIGGERS} <= names and PROGRESS_COLUMNS.keys() <= columns


def install(conn: sqlite3.Connection, files_columns: set[str]) -> None:
    """Add the progress columns, the counters and their triggers, in the caller's transaction.

    A new counters table starts from what the file already holds (settled files, finished
    deliveries, dead letters), so an old data dir's counters do not start at zero.
    """
    for name, kind in PROGRESS_COLUMNS.items():
        if name not in files_columns:
            conn.execute(f"ALTER TABLE files ADD COLUMN {name} {kind}")
    fresh = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'counters'").fetchone() is None
    for statement in TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.executemany("INSERT OR IGNORE INTO file_durations (le) VALUES (?)", [(le,) for le in DURATION_BUCKETS])
    if fresh:
        _seed(conn)
    for sql in TRIGGERS.values():
        conn.execute(sql)


def _seed(conn: sqlite3.Connection) -> None:
    final = tuple(str(s) for s in Status if s.is_final)
    conn.execute(
        "INSERT INTO counters (name, label, value) SELECT 'files', status, count(*) FROM files"
        " WHERE status IN (?, ?, ?, ?, ?) GROUP BY status",
        final,
    )
    conn.execute(
        "INSERT INTO counters (name, label, value) SELECT 'records', '', coalesce(sum(records), 0)"
        " FROM files WHERE status IN (?, ?, ?, ?, ?)",
        final,
    )
    conn.execute(
        "INSERT INTO counters (name, label, value) SELECT 'bytes', '', coalesce(sum(size), 0)"
        " FROM files WHERE status IN (?, ?, ?, ?, ?)",
        final,
    )
    conn.execute(
        "INSERT INTO counters (name, label, value) SELECT 'deliveries', status, count(*) FROM deliveries"
        " WHERE status IN ('delivered', 'failed') GROUP BY status"
    )
    conn.execute("INSERT INTO counters (name, label, value) SELECT 'dead_letters', '', count(*) FROM dead_letters")


@dataclass(frozen=True, slots=True)
class Counts:
    """The counters at one moment. ``durations``: (upper bound, files at most that long)."""

    files: dict[str, int] = field(default_factory=dict)
    records: int = 0
    bytes: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    durations: list[tuple[float, int]] = field(default_factory=list)
    duration_count: int = 0
    duration_sum: float = 0.0


def read(conn: sqlite3.Connection) -> Counts:
    """The counters, in one read transaction (a consistent moment). All zero on a data dir
    no writer of this version has opened yet."""
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"counters", "file_durations"} <= names:
        return Counts(files={str(s): 0 for s in Status if s.is_final}, deliveries={"delivered": 0, "failed": 0})
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")  # the two reads see one moment
    try:
        rows = conn.execute("SELECT name, label, value FROM counters").fetchall()
        buckets = conn.execute("SELECT le, files FROM file_durations ORDER BY le").fetchall()
    finally:
        if own:
            conn.execute("COMMIT")
    files = {str(s): 0 for s in Status if s.is_final}
    deliveries = {"delivered": 0, "failed": 0}
    single: dict[str, float] = {}
    for name, label, value in rows:
        if name == "files":
            files[str(label)] = int(value)
        elif name == "deliveries":
            deliveries[str(label)] = int(value)
        else:
            single[str(name)] = float(value)
    return Counts(
        files=files,
        records=int(single.get("records", 0)),
        bytes=int(single.get("bytes", 0)),
        deliveries=deliveries,
        dead_letters=int(single.get("dead_letters", 0)),
        durations=[(float(le), int(n)) for le, n in buckets],
        duration_count=int(single.get("file_duration_seconds_count", 0)),
        duration_sum=single.get("file_duration_seconds_sum", 0.0),
    )
