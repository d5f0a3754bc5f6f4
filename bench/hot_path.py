"""What progress and metrics add to each small file, measured in isolation (CPU time, median of 7).

    python bench/hot_path.py

`make bench` compares whole runs, and on a shared 2-core machine its wall-clock figures move by
10-20% from run to run, more than the few microseconds measured here. This script times only
the statements a small file's claim and settle run (begin, settle, clearing stale dead
letters: 50 files per commit, as group commit does) on a file-backed SQLite database in WAL
mode, with and without this branch's schema (progress columns, the counters' triggers), and
the progress board's calls per file. Compare with a small file's whole CPU cost in
`dockline run --once` (about 250-300 us here: `/usr/bin/time` of the `small` scenario / 5,000).
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from dockline.local import counters
from dockline.local.db import _SCHEMA, _columns
from dockline.local.progress import Board
from dockline.models import ObjectRef

FILES = 5000
_NOW = "2026-01-01T00:00:00.000Z"
_BEGIN = (
    "INSERT INTO files (bucket, key, version, status, attempts, size, sequencer, event_time, received_at,"
    " updated_at, lease_owner, lease_until{extra}) VALUES (?, ?, ?, 'processing', 1, ?, ?, ?, ?, ?, ?, ?{marks})"
    " ON CONFLICT (bucket, key, version) DO UPDATE SET status = 'processing', attempts = attempts + 1,"
    " updated_at = excluded.updated_at, lease_owner = excluded.lease_owner, lease_until = excluded.lease_until"
    "{reset}"
)
BEGIN_BEFORE = _BEGIN.format(extra="", marks="", reset="")
BEGIN_AFTER = _BEGIN.format(
    extra=", started_at",
    marks=", ?",
    reset=", started_at = excluded.started_at, records_done = 0, bytes_done = 0",
)
SETTLE = (
    "INSERT INTO files (bucket, key, version, status, records, size, received_at, updated_at, notified)"
    " VALUES ('local', ?, ?, 'processed', 1, 987, ?, '2026-01-01T00:00:00.004Z', 0) ON CONFLICT (bucket, key,"
    " version) DO UPDATE SET status = excluded.status, records = excluded.records, updated_at = excluded.updated_at,"
    " notified = excluded.notified"
)
RESOLVE = "DELETE FROM dead_letters WHERE bucket = 'local' AND key = ? AND version <> ?"


def _database(path: Path, *, columns: bool, triggers: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    if columns:
        counters.install(conn, _columns(conn, "files"))
        if not triggers:
            for name in counters.TRIGGERS:
                conn.execute(f"DROP TRIGGER {name}")
    return conn


def sql_per_file(folder: Path, *, columns: bool, triggers: bool) -> float:
    path = folder / f"hot-{columns}-{triggers}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = _database(path, columns=columns, triggers=triggers)
    begin = BEGIN_AFTER if columns else BEGIN_BEFORE
    started = time.process_time()
    for first in range(0, FILES, 50):
        conn.execute("BEGIN IMMEDIATE")
        for i in range(first, first + 50):
            params: tuple[object, ...] = ("local", f"k{i}", f"v{i}", 987, "s", "e", _NOW, _NOW, "owner", 1.0)
            conn.execute(begin, (*params, _NOW) if columns else params)
            conn.execute(SETTLE, (f"k{i}", f"v{i}", _NOW))
            conn.execute(RESOLVE, (f"k{i}", f"v{i}"))
        conn.execute("COMMIT")
    seconds = time.process_time() - started
    conn.close()
    return seconds / FILES * 1e6


def board_per_file() -> float:
    board = Board()
    refs = [ObjectRef(bucket="local", key=f"k{i}", version=f"v{i}", size=987) for i in range(FILES)]
    started = time.process_time()
    for ref in refs:
        board.start(ref)
        board.batch(ref, 1, 987)
        board.finish(ref)
    return (time.process_time() - started) / FILES * 1e6


def board_per_file_batched(batch: int = 200) -> float:
    """The board's calls as the batch path makes them (issue 11): plan, then one pair per batch."""
    board = Board()
    refs = [ObjectRef(bucket="local", key=f"k{i}", version=f"v{i}", size=987) for i in range(FILES)]
    started = time.process_time()
    board.plan(refs)
    for first in range(0, FILES, batch):
        begun = board.start_batch()
        board.finish_batch(refs[first : first + batch], batch, begun)
    return (time.process_time() - started) / FILES * 1e6


def main() -> None:
    runs: dict[str, list[float]] = {
        "before": [],
        "+ progress columns": [],
        "+ counters' triggers": [],
        "board": [],
        "board, in batches": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(7):
            runs["before"].append(sql_per_file(folder, columns=False, triggers=False))
            runs["+ progress columns"].append(sql_per_file(folder, columns=True, triggers=False))
            runs["+ counters' triggers"].append(sql_per_file(folder, columns=True, triggers=True))
            runs["board"].append(board_per_file())
            runs["board, in batches"].append(board_per_file_batched())
    for name, values in runs.items():
        each = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:>22}: {statistics.median(values):5.2f} us a file  (runs: {each})")


if __name__ == "__main__":
    main()
