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
CREATE TABLE IF NOT EXISTS counters (  -- deliveries by outcome, dead letters
    name TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    value REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (name, label)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS file_counts (  -- settled files by final state and duration bucket
    status TEXT NOT NULL,
    le REAL NOT NULL,                     -- the smallest bucket bound >= the duration, -1: unknown
    files INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,      -- the sum of the durations
    PRIMARY KEY (status, le)
) WITHOUT ROWID;
"""

# What a file reaching a final state adds: ONE upsert, since it runs in the settling
# transaction of every file (about 5-8 us a file here, against 14-20 us for one statement
# per counter; see the README's "Metrics for Prometheus"). The duration is
# the settling attempt's (begin wrote started_at; a row settled without a begin has none:
# le -1). Above the last bound the bucket is +Inf (9e999 is SQLite's infinity).
_BUCKET = " ".join(f"WHEN d <= {le!r} THEN {le!r}" for le in DURATION_BUCKETS)
_SETTLED_BODY = f"""
INSERT INTO file_counts (status, le, files, records, bytes, seconds)
    SELECT NEW.status, CASE WHEN d IS NULL THEN -1.0 {_BUCKET} ELSE 9e999 END, 1, NEW.records,
        coalesce(NEW.size, NEW.bytes_done, 0), coalesce(d, 0)
    FROM (SELECT (julianday(NEW.updated_at) - julianday(NEW.started_at)) * 86400.0 AS d) WHERE true
    ON CONFLICT (status, le) DO UPDATE SET files = files + 1, records = records + excluded.records,
        bytes = bytes + excluded.bytes, seconds = seconds + excluded.seconds;
"""  # noqa: S608 - numbers of our own, no input

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
    return {"counters", "file_counts", *TRIGGERS} <= names and PROGRESS_COLUMNS.keys() <= columns


def install(conn: sqlite3.Connection, files_columns: set[str]) -> None:
    """Add the progress columns, the counters and their triggers, in the caller's transaction.

    A new counters table starts from what the file already holds (settled files, finished
    deliveries, dead letters), so an old data dir's counters do not start at zero.
    """
    for name, kind in PROGRESS_COLUMNS.items():
        if name not in files_columns:
            conn.execute(f"ALTER TABLE files ADD COLUMN {name} {kind}")
    fresh = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'file_counts'").fetchone() is None
    for statement in TABLES.split(";\n"):
        if statement.strip():
            conn.execute(statement)
    if fresh:
        _seed(conn)
    for name, sql in TRIGGERS.items():
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")  # a later version may count differently
        conn.execute(sql)


def _seed(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO file_counts (status, le, files, records, bytes) SELECT status, -1, count(*),"
        " coalesce(sum(records), 0), coalesce(sum(size), 0) FROM files WHERE status IN (?, ?, ?, ?, ?)"
        " GROUP BY status",
        tuple(str(s) for s in Status if s.is_final),
    )
    conn.execute(
        "INSERT OR IGNORE INTO counters (name, label, value) SELECT 'deliveries', status, count(*) FROM deliveries"
        " WHERE status IN ('delivered', 'failed') GROUP BY status"
    )
    conn.execute(
        "INSERT OR IGNORE INTO counters (name, label, value) SELECT 'dead_letters', '', count(*) FROM dead_letters"
    )


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
    files = {str(s): 0 for s in Status if s.is_final}
    deliveries = {"delivered": 0, "failed": 0}
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"counters", "file_counts"} <= names:
        return Counts(files=files, deliveries=deliveries, durations=[(le, 0) for le in DURATION_BUCKETS])
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")  # the reads see one moment
    try:
        rows = conn.execute("SELECT name, label, value FROM counters").fetchall()
        cells = conn.execute("SELECT status, le, files, records, bytes, seconds FROM file_counts").fetchall()
    finally:
        if own:
            conn.execute("COMMIT")
    dead_letters = 0
    for name, label, value in rows:
        if name == "deliveries":
            deliveries[str(label)] = int(value)
        elif name == "dead_letters":
            dead_letters = int(value)
    for status, _le, n, *_ in cells:
        files[str(status)] = files.get(str(status), 0) + int(n)
    timed = [(float(le), int(n), float(seconds)) for _s, le, n, _r, _b, seconds in cells if le >= 0]
    return Counts(
        files=files,
        records=sum(int(cell[3]) for cell in cells),
        bytes=sum(int(cell[4]) for cell in cells),
        deliveries=deliveries,
        dead_letters=dead_letters,
        # Prometheus buckets are cumulative: files at most that long
        durations=[(bound, sum(n for le, n, _ in timed if le <= bound)) for bound in DURATION_BUCKETS],
        duration_count=sum(n for _, n, _ in timed),
        duration_sum=sum(seconds for *_, seconds in timed),
    )
