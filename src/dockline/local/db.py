"""The local engine's SQLite file: schema, connections, error translation.

One file, ``<data-dir>/dockline.db``, in WAL mode, holds the ledger items, the state
of every object version, the local topic's messages and the dead letters. WAL lets
readers (``dockline files list``) run while a worker writes; ``BEGIN IMMEDIATE``
serialises writers across processes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dockline.errors import DocklineError, TransientError

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    pk TEXT PRIMARY KEY,
    payload BLOB,                 -- canonical JSON (UTF-8), numbers exact; NULL when oversized
    content_hash TEXT,            -- SHA-256 of the canonical payload, kept when the payload is not
    file_id INTEGER NOT NULL,     -- files.id: the object version that wrote the item
    record_index INTEGER,         -- line / row / element in per-record mode
    processed_at TEXT NOT NULL
);
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
    skipped TEXT,                 -- JSON [{"index": n, "reason": "..."}]
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
    mtime_ns INTEGER NOT NULL,
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
CREATE TABLE IF NOT EXISTS deliveries (
    notification_id INTEGER NOT NULL,
    subscription TEXT NOT NULL,
    status TEXT NOT NULL,         -- delivered | failed
    error TEXT,
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

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a commit survives a crash of the process (kill -9);
                # only a power loss can drop the last commits, never corrupt the file.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise DocklineError(f"cannot open the ledger database {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; sqlite errors translated."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise translate(exc) from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise translate(exc) from exc

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
