"""The local engine's SQLite file: schema, connections, error translation.

One file, ``<data-dir>/dockline.db``, in WAL mode, holds the ledger items, the state
of every object version, the local topic's messages and the dead letters. WAL lets
readers (``dockline files list``) run while a worker writes; ``BEGIN IMMEDIATE``
serialises writers across processes.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from dockline.errors import DocklineError, TransientError

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    pk TEXT PRIMARY KEY,
    payload TEXT,                 -- canonical JSON, numbers exact; NULL when oversized
    content_hash TEXT,            -- SHA-256 of the canonical payload, kept when the payload is not
    file_id INTEGER NOT NULL,     -- files.id: the object version that wrote the item
    record_index INTEGER,         -- line / row / element in per-record mode
    processed_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,        -- SHA-256 of the object's bytes (or special-<inode>-<mtime>)
    status TEXT NOT NULL,
    error TEXT,
    pk TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    conflicts INTEGER NOT NULL DEFAULT 0,
    skipped TEXT,                 -- JSON [{"index": n, "reason": "..."}], the first 100
    skipped_total INTEGER NOT NULL DEFAULT 0,
    size INTEGER,
    sequencer TEXT,
    event_time TEXT,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    notified INTEGER NOT NULL DEFAULT 0,
    UNIQUE (bucket, key, version)
);
CREATE INDEX IF NOT EXISTS files_by_status ON files (status);
CREATE TABLE IF NOT EXISTS seen (    -- stat cache: a rescan hashes only changed files
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,      -- ctime: every write moves it, nobody can set it
    inode INTEGER NOT NULL,
    version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    attributes TEXT NOT NULL,
    published_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (  -- the outbox of the delivery worker (local/deliveries.py)
    notification_id INTEGER NOT NULL,
    subscription TEXT NOT NULL,
    status TEXT NOT NULL,         -- pending | sending | retrying | delivered | failed
    error TEXT,                   -- the last attempt's reason
    attempts INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (notification_id, subscription)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    failed_at TEXT NOT NULL
);
"""


_DELIVERY_COLUMNS = {
    "next_attempt_at": "TEXT",  # ISO time the worker may try next; NULL: now
    "owner": "TEXT",  # host:pid:token of the worker sending it (status 'sending')
    "scheduled_from": "TEXT",  # ISO start of the retry horizon: first publish, or the last redeliver
}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}


def translate(exc: sqlite3.Error) -> DocklineError:
    """sqlite3 errors -> dockline errors: a busy/locked database is worth retrying."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return TransientError(f"the ledger database is busy: {text}")
    return DocklineError(f"ledger database error: {text}")


class Database:
    """Per-thread connections to one SQLite file, created with the schema on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Writers of this process take turns on one connection; processes take turns
        # through flock on a lock file (the kernel queues waiters fairly, where SQLite's
        # own busy handler polls and can starve a second `dockline run`).
        self._write_lock = threading.RLock()
        self._writer: sqlite3.Connection | None = None
        self._lock_file = (path.parent / (path.name + ".lock")).open("a+b")
        self._group: _Group | None = None
        self._after_commit: list[Callable[[], object]] = []
        conn = self.connection()
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found not in (0, SCHEMA_VERSION):
            raise DocklineError(
                f"{path} was written by another dockline version (schema {found}, this one needs {SCHEMA_VERSION});"
                " use a new --data-dir"
            )
        try:
            # executescript commits on its own; the statements are idempotent.
            conn.executescript(_SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        self._add_delivery_columns(conn)

    def _add_delivery_columns(self, conn: sqlite3.Connection) -> None:
        """Schema 2 grew the deliveries' schedule in place: added columns are NULL in old
        rows (due now, no owner), so older data dirs keep working and no version bump is
        needed. Checked under the write lock: two processes may open an old file at once."""
        if _DELIVERY_COLUMNS.keys() <= _columns(conn, "deliveries"):
            return
        self._begin(conn)
        try:
            for name, kind in _DELIVERY_COLUMNS.items():
                if name not in _columns(conn, "deliveries"):
                    conn.execute(f"ALTER TABLE deliveries ADD COLUMN {name} {kind}")
            conn.execute("CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at)")
        except sqlite3.Error as exc:
            self._end(conn, commit=False)
            raise translate(exc) from exc
        except BaseException:
            self._end(conn, commit=False)
            raise
        self._end(conn, commit=True)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit survives a power loss, not only a crash of the process.
            # Group commit (see ``group``) keeps that to one fsync per group.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise DocklineError(f"cannot open the ledger database {self.path}: {exc}") from exc
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, for reads (it sees committed data only)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def on_commit(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` once after the next commit (outside the write lock)."""
        with self._write_lock:
            self._after_commit.append(callback)

    def _begin(self, conn: sqlite3.Connection) -> None:
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            raise translate(exc) from exc

    def _end(self, conn: sqlite3.Connection, *, commit: bool) -> None:
        try:
            conn.execute("COMMIT" if commit else "ROLLBACK")
        except sqlite3.Error as exc:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise translate(exc) from exc
        finally:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    def _take_callbacks(self) -> list[Callable[[], object]]:
        callbacks, self._after_commit = self._after_commit, []
        return callbacks

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of writes; sqlite errors translated, rolled back on any error.

        Alone it is BEGIN IMMEDIATE ... COMMIT. Inside ``group`` it is a savepoint in
        the group's transaction, committed with the group.
        """
        callbacks: list[Callable[[], object]] = []
        with self._write_lock:
            if self._writer is None:
                self._writer = self._connect()
            conn = self._writer
            group = self._group
            if group is not None:
                if not group.open:
                    self._begin(conn)
                    group.start()
                conn.execute("SAVEPOINT unit")
                try:
                    yield conn
                except BaseException as exc:
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    if isinstance(exc, sqlite3.Error):
                        raise translate(exc) from exc
                    raise
                conn.execute("RELEASE unit")
                if group.due():
                    self._end(conn, commit=True)
                    group.open = False
                    callbacks = self._take_callbacks()
            else:
                self._begin(conn)
                try:
                    yield conn
                except BaseException as exc:
                    self._end(conn, commit=False)
                    if isinstance(exc, sqlite3.Error):
                        raise translate(exc) from exc
                    raise
                self._end(conn, commit=True)
                callbacks = self._take_callbacks()
        for callback in callbacks:
            callback()

    @contextmanager
    def group(self, *, max_seconds: float = 0.05, max_units: int = 2000) -> Iterator[None]:
        """Group commit: every ``transaction`` in this block (from any thread) joins one
        transaction, committed when it is ``max_seconds`` old or has ``max_units`` units,
        and at the end. A crash loses at most the open group, never half a unit.
        """
        with self._write_lock:
            if self._group is not None:  # already grouping: join it
                nested = True
            else:
                nested = False
                self._group = _Group(max_seconds, max_units)
        try:
            yield
        finally:
            callbacks: list[Callable[[], object]] = []
            if not nested:
                with self._write_lock:
                    group, self._group = self._group, None
                    if group is not None and group.open and self._writer is not None:
                        self._end(self._writer, commit=True)
                        callbacks = self._take_callbacks()
            for callback in callbacks:
                callback()

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        conn = self.connection()
        conn.row_factory = sqlite3.Row
        try:
            return list(conn.execute(sql, params))
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        finally:
            conn.row_factory = None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        with self._write_lock:
            if self._writer is not None and self._group is None:
                self._writer.close()
                self._writer = None


class _Group:
    def __init__(self, max_seconds: float, max_units: int) -> None:
        self.max_seconds = max_seconds
        self.max_units = max_units
        self.open = False
        self.units = 0
        self.started = 0.0

    def start(self) -> None:
        self.open = True
        self.units = 0
        self.started = time.monotonic()

    def due(self) -> bool:
        self.units += 1
        return self.units >= self.max_units or time.monotonic() - self.started >= self.max_seconds
