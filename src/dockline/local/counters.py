"""Monotonic counters of a data dir: what its rows hold now, plus what rows gave up.

Prometheus counters must only go up, across processes and restarts. Counting settled
files, records, deliveries and dead letters from the tables alone does not give that: a
redrive turns a failed file back into a pending one, ``prune`` deletes deliveries, a
redrive removes dead letters. So a counter is

    (the contribution of the rows that are there now) + (the contribution of rows that left)

and the second term is kept where a row stops contributing: a settled ``files`` row
leaving its final state (a redrive's reopen, a reprocess) by ``retire_files``, called by
those two statements in their transaction; a finished delivery retried or pruned, or a
dead letter removed, by SQLite triggers. Either way the sum never goes down and a
rolled-back change retires nothing. Those are rare events, and the hot path (claim, write,
settle) pays nothing: ``files`` has no trigger (one cost every UPDATE of it ~7 % of the
small-files benchmark, its body never running), and a trigger that wrote on every settle
cost 15-20 us a file. The price is paid at scrape time: one
pass over the ``files`` rows (grouped in SQL), which ``status`` already pays for its rates.
This module knows no Prometheus: ``local/metrics.py`` turns ``read`` into metric families.
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

_FINAL = tuple(str(s) for s in Status if s.is_final)
_FINAL_LIST = "('processed', 'failed', 'duplicate', 'conflict', 'superseded')"
assert "(" + ", ".join(f"'{s}'" for s in _FINAL) + ")" == _FINAL_LIST
_FINISHED_DELIVERIES = ("delivered", "failed")

TABLES = """
CREATE TABLE IF NOT EXISTS retired_files (  -- what settled files rows contributed before they changed
    status TEXT NOT NULL,
    le REAL NOT NULL,                       -- duration bucket: smallest bound >= the duration, -1 unknown
    files INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (status, le)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS retired (         -- finished deliveries (label: outcome) and dead letters that left
    name TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    value INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, label)
) WITHOUT ROWID;
"""


# A settled file's contribution, from the columns of one files row (``p``: a table alias
# with its dot, or ""): its state, its duration's bucket, records, bytes and seconds.
# The duration is the settling attempt's (begin wrote started_at; a row from before this
# version has none: le -1). Above the last bound: +Inf (9e999 is SQLite's infinity).
def _seconds(p: str) -> str:
    return f"(julianday({p}updated_at) - julianday({p}started_at)) * 86400.0"


def _bucket(p: str) -> str:
    whens = " ".join(f"WHEN {_seconds(p)} <= {le!r} THEN {le!r}" for le in DURATION_BUCKETS)
    return f"CASE WHEN {p}started_at IS NULL THEN -1.0 {whens} ELSE 9e999 END"


def _bytes(p: str) -> str:
    return f"coalesce({p}size, {p}bytes_done, 0)"


def _retire(name: str, label: str) -> str:
    return (
        f"INSERT INTO retired (name, label, value) VALUES ('{name}', {label}, 1)"  # noqa: S608 - our constants
        " ON CONFLICT (name, label) DO UPDATE SET value = value + 1;"
    )


# The files table has no trigger: any trigger on it costs every UPDATE of it (the claim and
# the settle of each file, ~7 % of the small-files benchmark, measured), though its body
# never runs there. Only two statements take a settled row out of its final state (a
# redrive's reopen, a reprocess); each calls ``retire_files`` first, in its transaction.
# Rows are never deleted from files.
_DROPPED_TRIGGERS = ("retire_settled_file", "retire_deleted_file")


def retire_files(conn: sqlite3.Connection, where: str, params: tuple[object, ...]) -> None:
    """Keep the counted share of the settled ``files`` rows that ``where`` selects (about to
    leave their final state), in the caller's transaction. ``where``: our own SQL text."""
    conn.execute(
        "INSERT INTO retired_files (status, le, files, records, bytes, seconds)"  # noqa: S608 - our constants
        f" SELECT status, {_bucket('')}, 1, records, {_bytes('')}, coalesce({_seconds('')}, 0) FROM files"
        f" WHERE status IN {_FINAL_LIST} AND ({where})"
        " ON CONFLICT (status, le) DO UPDATE SET files = files + 1, records = records + excluded.records,"
        " bytes = bytes + excluded.bytes, seconds = seconds + excluded.seconds",
        params,
    )


TRIGGERS = {
    "retire_finished_delivery": "CREATE TRIGGER retire_finished_delivery AFTER UPDATE OF status ON deliveries"
    " WHEN OLD.status IN ('delivered', 'failed') AND OLD.status IS NOT NEW.status"
    f" BEGIN {_retire('deliveries', 'OLD.status')} END",
    "retire_deleted_delivery": "CREATE TRIGGER retire_deleted_delivery AFTER DELETE ON deliveries"
    f" WHEN OLD.status IN ('delivered', 'failed') BEGIN {_retire('deliveries', 'OLD.status')} END",
    # Not fired by INSERT OR REPLACE of a letter already there (the same letter sent again
    # after a crash): SQLite fires delete triggers for REPLACE only with recursive_triggers.
    "retire_dead_letter": "CREATE TRIGGER retire_dead_letter AFTER DELETE ON dead_letters"
    " BEGIN " + _retire("dead_letters", "''") + " END",
}


def installed(names: set[str], columns: set[str]) -> bool:
    """Are the retired tables, their triggers and the progress columns all there?"""
    return (
        {"retired_files", "retired", *TRIGGERS} <= names
        and not names & set(_DROPPED_TRIGGERS)
        and PROGRESS_COLUMNS.keys() <= columns
    )


def install(conn: sqlite3.Connection, files_columns: set[str]) -> None:
    """Add the progress columns, the retired tables and their triggers, in the caller's
    transaction. Rows already there count as they are: nothing needs seeding."""
    for name, kind in PROGRESS_COLUMNS.items():
        if name not in files_columns:
            conn.execute(f"ALTER TABLE files ADD COLUMN {name} {kind}")
    for statement in TABLES.split(";\n"):
        if statement.strip():
            conn.execute(statement)
    for name in _DROPPED_TRIGGERS:  # a data dir from before retire_files
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    for name, sql in TRIGGERS.items():
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")  # a later version may count differently
        conn.execute(sql)


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
    """The counters, in one read transaction (a consistent moment).

    Costs one pass over the ``files`` rows in a final state, grouped in SQL."""
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(files)")}
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")  # the reads see one moment
    try:
        cells = conn.execute(_live_files_query(columns), _FINAL).fetchall()
        deliveries = dict(
            conn.execute(
                "SELECT status, count(*) FROM deliveries WHERE status IN (?, ?) GROUP BY status", _FINISHED_DELIVERIES
            ).fetchall()
        )
        dead_letters = int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])
        if {"retired_files", "retired"} <= names:
            cells += conn.execute("SELECT status, le, files, records, bytes, seconds FROM retired_files").fetchall()
            for name, label, value in conn.execute("SELECT name, label, value FROM retired"):
                if name == "deliveries":
                    deliveries[label] = deliveries.get(label, 0) + int(value)
                elif name == "dead_letters":
                    dead_letters += int(value)
    finally:
        if own:
            conn.execute("COMMIT")
    files = dict.fromkeys(_FINAL, 0)
    for status, _le, n, *_ in cells:
        files[str(status)] = files.get(str(status), 0) + int(n)
    timed = [(float(le), int(n), float(seconds or 0)) for _s, le, n, _r, _b, seconds in cells if le >= 0]
    return Counts(
        files=files,
        records=sum(int(cell[3] or 0) for cell in cells),
        bytes=sum(int(cell[4] or 0) for cell in cells),
        deliveries={outcome: int(deliveries.get(outcome, 0)) for outcome in _FINISHED_DELIVERIES},
        dead_letters=dead_letters,
        # Prometheus buckets are cumulative: files at most that long
        durations=[(bound, sum(n for le, n, _ in timed if le <= bound)) for bound in DURATION_BUCKETS],
        duration_count=sum(n for _, n, _ in timed),
        duration_sum=sum(seconds for *_, seconds in timed),
    )


def _live_files_query(columns: set[str]) -> str:
    """Settled files rows grouped by state and duration bucket, as retired_files holds them."""
    inner = f"status, {_bucket('')} AS le, records, {_bytes('')} AS bytes, coalesce({_seconds('')}, 0) AS seconds"
    if not PROGRESS_COLUMNS.keys() <= columns:  # a data dir no run of this version opened yet
        inner = inner.replace("started_at", "NULL").replace("bytes_done", "NULL")
    return (
        "SELECT status, le, count(*), sum(records), sum(bytes), sum(seconds) FROM"  # noqa: S608 - our columns
        f" (SELECT {inner} FROM files WHERE status IN (?, ?, ?, ?, ?)) GROUP BY status, le"
    )
