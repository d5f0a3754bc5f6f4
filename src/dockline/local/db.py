"""The local engine's SQLite file: schema, connections, commits, error translation.

One file, ``<data-dir>/dockline.db``, in WAL mode, holds the ledger items, the state
of every object version, the local topic's messages and the dead letters. WAL lets
readers (``dockline files list``) run while a worker writes; they open the file
read-only and never take a lock a writer could be waiting on.

Writers of all processes take turns through ``lock.WriteLock``, held only while SQL
runs and at most ``linger_seconds`` (2 ms) after: units that come back to back share
one transaction (a chain), so a process reading or decoding a file holds no lock.
Ctrl-Z is caught by ``dockline run``, which commits before it stops (``idle``). Commits
use ``synchronous=NORMAL``; durability comes from an explicit fsync of the WAL (once per
``max_seconds`` inside ``group``, after every unit outside it), and ``on_commit``
callbacks run only after it, so nothing is counted or announced before it is durable.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from dockline.errors import DocklineError, TransientError
from dockline.local import compact, counters
from dockline.local.lock import DatabaseUnavailable, LockWaitError, WriteLock

log = logging.getLogger("dockline.local")

SCHEMA_VERSION = 2

# The page size of a new file (an existing file keeps its own). 8 KB pages hold seven ~1 KB
# items where 4 KB pages hold three, leaving a quarter of each page empty: the items of
# 5,000 small files take 5.9 MB instead of 6.9 MB (dbstat after bench/run.py --only small).
PAGE_SIZE = 8192

_SCHEMA = (
    compact.ITEMS_TABLE.format(name="items")
    + """;
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
CREATE TABLE IF NOT EXISTS ignored ( -- keys the last scan saw that no route takes (issue 9)
    key TEXT PRIMARY KEY,
    route TEXT,                     -- the nearest route
    why TEXT NOT NULL,              -- prefix | suffix | case | prefix and suffix
    detail TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (    -- stat cache: a rescan hashes only changed files
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,      -- ctime: every write moves it, nobody can set it
    inode INTEGER NOT NULL,
    version TEXT NOT NULL
) WITHOUT ROWID;                     -- small rows found by key: one B-tree, no second index
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
)


class StorageError(DatabaseUnavailable):
    """The disk is full or failing (ENOSPC, EIO, SQLITE_FULL, SQLITE_IOERR)."""


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EROFS}
_STORAGE_WORDS = ("disk is full", "disk i/o error", "database or disk is full", "readonly database")


_DELIVERY_COLUMNS = {
    "next_attempt_at": "TEXT",  # ISO time the worker may try next; NULL: now
    "owner": "TEXT",  # host:pid:token of the worker sending it (status 'sending')
    "scheduled_from": "TEXT",  # ISO start of the retry horizon: first publish, or the last redeliver
}

# Columns added in place after schema 2, like the deliveries' (old data dirs keep working):
# (table, column) -> type.
_ADDED_COLUMNS = {
    # Reprocess (local/reprocess.py): how often a version was reopened, and which of those
    # runs wrote an item; 0 in old rows (never reopened).
    ("files", "generation"): "INTEGER NOT NULL DEFAULT 0",
    ("items", "generation"): "INTEGER NOT NULL DEFAULT 0",
    # The route that read the record (issue 9); NULL: the default route ([pipeline]).
    ("items", "route"): "TEXT",
    # Records a route's transform dropped (returned None for); 0 in old rows.
    ("files", "dropped"): "INTEGER NOT NULL DEFAULT 0",
}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}


def _storage_text(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _STORAGE_WORDS)


def translate(exc: sqlite3.Error) -> DocklineError:
    """sqlite3 errors -> dockline errors: a busy/locked database is worth retrying,
    a full or failing disk is nobody's file's fault."""
    text = str(exc)
    if _storage_text(text) or getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        return StorageError(f"the ledger database cannot be written: {text}")
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return TransientError(f"the ledger database is busy: {text}")
    return DocklineError(f"ledger database error: {text}")


def _os_error(exc: OSError, what: str) -> DocklineError:
    reason = exc.strerror or str(exc)
    if exc.errno in _STORAGE_ERRNOS:
        return StorageError(f"{what}: {reason}")
    return DocklineError(f"{what}: {reason}")


class Database:
    """Per-thread connections to one SQLite file.

    ``read_only``: opens the file with ``mode=ro`` (or ``immutable`` when the data dir
    cannot hold WAL index files), never creates or changes anything, takes no lock.
    Raises DocklineError (one line) when the file cannot be opened.
    """

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        lock_wait_seconds: float = 30.0,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.lock_wait_seconds = lock_wait_seconds
        self.on_wait = on_wait or log.warning
        self._local = threading.local()
        # Writers of this process take turns on one connection (the RLock); processes
        # take turns through the lock file.
        self._write_lock = threading.RLock()
        self._writer: sqlite3.Connection | None = None
        self._group: _Group | None = None
        self._after_commit: list[tuple[int | None, Callable[[], object]]] = []  # (chain, callback)
        self._unsynced = False
        self._synced_at = time.monotonic()
        # The open chain: one SQLite transaction holding units that came back to back.
        self._chain: int | None = None
        self._chain_seq = 0
        self._chain_started = 0.0
        self._chain_last = 0.0
        self._chain_units = 0
        self._lost: set[int] = set()  # chains rolled back whole after their units returned
        self.linger_seconds = 0.002
        self._linger_wake = threading.Condition(self._write_lock)
        self._linger_thread: threading.Thread | None = None
        self._closed = False
        self._ready: list[Callable[[], object]] = []  # due callbacks the committer thread found
        self.trouble: DatabaseUnavailable | None = None  # the last storage/lock problem, until a commit works
        self._trouble_gen = 0
        self._write: WriteLock | None = None
        if read_only:
            self.connection().execute("SELECT 1 FROM sqlite_master LIMIT 1")
            return
        self._write = WriteLock(
            path.parent / (path.name + ".lock"),
            what=f"the ledger lock on {path}",
            wait_seconds=lock_wait_seconds,
            on_wait=self.on_wait,
            os_error=_os_error,
        )
        self._ensure_schema()

    # -- connections ---------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            if self.read_only:
                return self._connect_read_only()
            return self._connect_writable()
        except sqlite3.Error as exc:
            kind = StorageError if _storage_text(str(exc)) and not self.read_only else DocklineError
            raise kind(f"cannot open the ledger database {self.path}: {exc}") from exc

    def _connect_writable(self) -> sqlite3.Connection:
        """A connection in WAL mode. Two processes opening a new file at once race to switch
        it to WAL, which SQLite refuses with "database is locked" at once (its busy handler
        is not called for that lock): the loser tries again, up to ``lock_wait_seconds``."""
        deadline = time.monotonic() + max(self.lock_wait_seconds, 1.0)
        pause = 0.005
        while True:
            conn = sqlite3.connect(
                self.path, timeout=self.lock_wait_seconds, isolation_level=None, check_same_thread=False
            )
            try:
                # Before the first table is made only; a no-op on an existing file.
                conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL: a commit is not fsynced by SQLite; ``_sync`` fsyncs the WAL before any
                # commit is counted or announced, so a power loss loses nothing acknowledged.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.OperationalError as exc:
                conn.close()
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
                continue
            except BaseException:
                conn.close()
                raise
            return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        uri = self.path.absolute().as_uri()
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        except sqlite3.OperationalError:
            conn.close()
            # A WAL reader needs the -shm file or the right to create it. Without both -wal
            # and -shm (the last writer closed cleanly) the main file is complete and can be
            # read as immutable; with a -wal left behind, immutable would show stale data.
            if Path(f"{self.path}-wal").exists():
                raise
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, for reads (it sees committed data only)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._local.conn = self._connect()
            except sqlite3.Error as exc:
                raise DocklineError(f"cannot read the ledger database {self.path}: {exc}") from exc
        return conn

    def _writer_conn(self) -> sqlite3.Connection:
        if self.read_only:
            raise DocklineError(f"{self.path} is open read-only")
        if self._writer is None:
            self._writer = self._connect()
        return self._writer

    _TABLES = re.compile(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)")

    def _ensure_schema(self) -> None:
        """Create the schema unless it is there: an up-to-date file needs no write (and so
        no lock) to open, so a stopped writer cannot keep a new process from starting."""
        wanted = set(self._TABLES.findall(_SCHEMA))
        try:
            conn = self.connection()
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            scheduled = "deliveries" in present and _DELIVERY_COLUMNS.keys() <= _columns(conn, "deliveries")
            scheduled = scheduled and all(c in _columns(conn, t) for t, c in _ADDED_COLUMNS)
            counted = "files" in present and counters.installed(present, _columns(conn, "files"))
            compacted = not compact.is_old(compact.items_sql(conn))
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        if found not in (0, SCHEMA_VERSION):
            raise DocklineError(
                f"{self.path} was written by another dockline version"
                f" (schema {found}, this one needs {SCHEMA_VERSION}); use a new --data-dir"
            )
        if found == SCHEMA_VERSION and wanted <= present and scheduled and counted and compacted:
            return
        with self._write_lock:
            self._lock()
            try:
                # executescript commits on its own; the statements are idempotent.
                writer = self._writer_conn()
                writer.executescript(_SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
                self._add_delivery_columns(writer)
                if not compacted:
                    self._move_items(writer)
            except sqlite3.Error as exc:
                raise translate(exc) from exc
            finally:
                self._unlock()
            self._sync()

    def _move_items(self, conn: sqlite3.Connection) -> None:
        """Move an older ledger's items to the compact layout (local/compact.py), then give the
        old table's pages back to the disk. A disk that fills up rolls either step back whole:
        the old layout keeps working, or the moved one keeps its free pages for new items."""
        try:
            moved = compact.move_items(conn, self.path, self.on_wait)
        except sqlite3.Error as exc:
            error = translate(exc)
            if not isinstance(error, StorageError):
                raise
            self.on_wait(f"the ledger {self.path} keeps its older, larger layout for now: {error}")
            return
        if not moved:
            return
        try:
            # The copy went to the end of the file and the old table's pages are now free:
            # without this the file would keep both (296 MB for 1M NDJSON records, not 152).
            # One transaction as well; readers keep reading meanwhile (WAL).
            conn.execute("VACUUM")
        except sqlite3.Error as exc:
            error = translate(exc)
            if not isinstance(error, StorageError):
                raise
            self.on_wait(f"the ledger {self.path} keeps its free pages for new items: {error}")

    @staticmethod
    def _add_delivery_columns(conn: sqlite3.Connection) -> None:
        """Schema 2 grew the deliveries' schedule in place: added columns are NULL in old
        rows (due now, no owner), so older data dirs keep working and no version bump is
        needed. Run under the write lock: two processes may open an old file at once."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            for name, kind in _DELIVERY_COLUMNS.items():
                if name not in _columns(conn, "deliveries"):
                    conn.execute(f"ALTER TABLE deliveries ADD COLUMN {name} {kind}")
            for (table, name), kind in _ADDED_COLUMNS.items():
                if name not in _columns(conn, table):
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            conn.execute("CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at)")
            # Progress columns on files and the metrics' counters, added in place the same way.
            counters.install(conn, _columns(conn, "files"))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- the write lock --------------------------------------------------------------
    def _lock(self) -> None:
        assert self._write is not None
        try:
            self._write.acquire()
        except LockWaitError as exc:
            self._set_trouble(exc)
            raise

    def _unlock(self) -> None:
        assert self._write is not None
        self._write.release()

    def _set_trouble(self, error: DatabaseUnavailable) -> None:
        self.trouble = error
        self._trouble_gen += 1

    @contextmanager
    def idle(self) -> Iterator[None]:
        """Hold this process's writers off: inside, no unit runs, no transaction is open and
        no lock is held (an open chain is committed first)."""
        with self._write_lock:
            callbacks = self._end_chain() if self._chain is not None else []
            callbacks, self._ready = self._ready + callbacks, []
            yield
        for callback in callbacks:
            callback()

    def commit_now(self) -> None:
        """End the open chain and fsync now (before exiting without leaving ``group``)."""
        with self._write_lock:
            callbacks = self._end_chain() if self._chain is not None else []
            callbacks, self._ready = self._ready + callbacks + self._sync(), []
        for callback in callbacks:
            callback()

    # -- units -----------------------------------------------------------------------
    def on_commit(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` once the writes this thread made so far are durable (outside the
        write lock). Dropped when they are lost (disk full mid-group) or roll back."""
        with self._write_lock:
            chain = getattr(self._local, "chain", None)
            if chain is not None and chain in self._lost:
                return
            self._after_commit.append((chain, callback))

    def _sync(self) -> list[Callable[[], object]]:
        """fsync the WAL: every commit so far is durable. Returns the callbacks now due."""
        if self._unsynced or self._after_commit:
            try:
                fd = os.open(f"{self.path}-wal", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                fd = -1  # checkpointed and removed: the checkpoint synced the main file
            except OSError as exc:
                raise self._sync_failed(exc) from exc
            if fd >= 0:
                try:
                    os.fsync(fd)
                except OSError as exc:
                    raise self._sync_failed(exc) from exc
                finally:
                    os.close(fd)
        self._unsynced = False
        self._synced_at = time.monotonic()
        callbacks = [callback for _, callback in self._after_commit]
        self._after_commit = []
        return callbacks

    def _sync_failed(self, exc: OSError) -> DocklineError:
        self._after_commit.clear()  # not durable: nothing of it is counted or announced
        error = _os_error(exc, f"cannot sync {self.path}")
        if isinstance(error, StorageError):
            self._set_trouble(error)
        return error

    def _start_chain(self, conn: sqlite3.Connection) -> None:
        self._lock()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._unlock()
            raise self._storage(translate(exc)) from exc
        self._chain_seq += 1
        self._chain = self._chain_seq
        if self._group is not None:
            # Only a new chain wakes the committer; while one is open it checks every
            # ``linger_seconds`` by itself (a wake-up per unit costs a thread switch each).
            self._linger_wake.notify()
        self._chain_started = time.monotonic()
        self._chain_units = 0

    def _end_chain(self) -> list[Callable[[], object]]:
        """COMMIT the open chain and release the lock; fsync when due. Returns due callbacks.
        Raises StorageError (the chain is lost) when the commit fails."""
        conn = self._writer
        assert conn is not None and self._chain is not None
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._lose_chain(translate(exc)) from exc
        self._chain = None
        self._unlock()
        self._unsynced = True
        group = self._group
        due = group is None or time.monotonic() - self._synced_at >= group.max_seconds
        callbacks = self._sync() if due else []
        if self.trouble is not None and (isinstance(self.trouble, LockWaitError) or not self._unsynced):
            self.trouble = None  # the lock came, or a commit is durable: the disk is back
        return callbacks

    def _lose_chain(self, error: DocklineError) -> DocklineError:
        """Roll the open chain back whole: its units' threads learn it at their next unit."""
        conn = self._writer
        with suppress(sqlite3.Error):
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
        lost = self._chain
        self._chain = None
        self._unlock()
        if lost is not None:
            self._lost.add(lost)
            self._after_commit = [(c, cb) for c, cb in self._after_commit if c != lost]
        return self._storage(error)

    def _storage(self, error: DocklineError) -> DocklineError:
        if isinstance(error, StorageError):
            self._set_trouble(error)
        return error

    def _linger(self) -> None:
        """Committer thread: ends a chain ``linger`` seconds after its last unit, so the lock
        is never held while this process does something other than SQL for longer."""
        with self._linger_wake:
            while not self._closed:
                if self._chain is None:
                    self._linger_wake.wait()
                    continue
                quiet = time.monotonic() - self._chain_last
                if quiet < self.linger_seconds:
                    self._linger_wake.wait(self.linger_seconds - quiet)
                    continue
                with suppress(DocklineError):
                    # Run by the next unit or the group's end, on a thread that does the
                    # work: this one is a daemon and must never be the one left holding it.
                    self._ready += self._end_chain()

    def _unit_failed(self, conn: sqlite3.Connection, exc: BaseException, mark: int) -> BaseException:
        """Undo one unit; when SQLite undid its whole chain, the chain is lost. Returns the error to raise."""
        error: BaseException = exc
        translated = translate(exc) if isinstance(exc, sqlite3.Error) else None
        try:
            if not conn.in_transaction:
                raise sqlite3.OperationalError("the transaction was rolled back")
            conn.execute("ROLLBACK TO unit")
            conn.execute("RELEASE unit")
            del self._after_commit[mark:]
            if translated is not None:
                error = self._storage(translated)
        except sqlite3.Error:  # SQLite gave up the whole chain (SQLITE_FULL, IOERR)
            error = self._lose_chain(translated or StorageError(f"the ledger database failed: {exc}"))
        if self._chain is not None and (self._group is None or self._chain_units == 0):
            with suppress(DocklineError):
                self._ready += self._end_chain()  # nothing of this unit is in it: release the lock
        return error

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of writes (a savepoint in a chain: BEGIN IMMEDIATE ... COMMIT).

        Alone, the chain is this unit: committed and fsynced before it returns. Inside
        ``group``, units that follow each other within ``linger_seconds`` share one chain
        (one commit), and their fsync is shared for ``max_seconds``; a unit's callbacks run
        after that fsync. Raises StorageError (disk full/failing; also at the next unit of a
        thread whose earlier unit was lost with its chain), LockWaitError (another process
        held the lock too long), DocklineError for other sqlite errors; rolled back on error.
        A unit opened inside another on the same thread joins it (the core's batch, which
        settles many files in one unit): kept or rolled back with it.
        """
        if getattr(self._local, "inside", False):
            # A unit inside this thread's open unit (the core's batch): part of it, kept or
            # rolled back with it; it only translates errors.
            try:
                yield self._writer_conn()
            except sqlite3.Error as exc:
                raise translate(exc) from exc
            return
        seen = self._trouble_gen
        callbacks: list[Callable[[], object]] = []
        with self._write_lock:
            if self._trouble_gen != seen and isinstance(self.trouble, LockWaitError):
                raise self.trouble  # another thread of ours just waited the whole bound
            mine = getattr(self._local, "chain", None)
            if mine is not None and mine in self._lost:
                self._local.chain = None
                raise StorageError(
                    f"an earlier write of this file was lost with its group: {self.trouble or 'disk full'}"
                )
            conn = self._writer_conn()
            if self._chain is None:
                self._start_chain(conn)
            self._local.chain = self._chain
            mark = len(self._after_commit)
            try:
                conn.execute("SAVEPOINT unit")
            except sqlite3.Error as exc:
                raise self._lose_chain(translate(exc)) from exc
            self._local.inside = True
            try:
                yield conn
            except BaseException as exc:
                self._local.inside = False
                error = self._unit_failed(conn, exc, mark)
                if error is exc:
                    raise
                raise error from exc
            self._local.inside = False
            try:
                conn.execute("RELEASE unit")
            except sqlite3.Error as exc:
                raise self._lose_chain(translate(exc)) from exc
            self._chain_units += 1
            self._chain_last = time.monotonic()
            group = self._group
            if (
                group is None
                or self._chain_units >= group.max_units
                or self._chain_last - self._chain_started >= group.max_seconds
            ):
                callbacks = self._end_chain()
            callbacks, self._ready = self._ready + callbacks, []
        for callback in callbacks:
            callback()

    @contextmanager
    def group(self, *, max_seconds: float = 0.05, max_units: int = 2000) -> Iterator[None]:
        """Group commit: units in this block (from any thread) share commits while they come
        back to back (within ``linger_seconds``) and share an fsync per ``max_seconds``.
        A power loss loses at most the unsynced commits, whose callbacks have not run; a
        storage error loses at most the open chain, whose units' files are left for later.
        """
        with self._write_lock:
            nested = self._group is not None
            if not nested:
                self._group = _Group(max_seconds, max_units)
                if self._linger_thread is None and not self.read_only:
                    self._linger_thread = threading.Thread(target=self._linger, name="dockline-commit", daemon=True)
                    self._linger_thread.start()
        try:
            yield
        finally:
            callbacks: list[Callable[[], object]] = []
            if not nested:
                with self._write_lock:
                    try:
                        # A full or failing disk at the group's end loses the open chain only
                        # (``trouble`` says why, for the caller's one line); what committed before
                        # is still synced and counted, as inside the group.
                        if self._chain is not None:
                            with suppress(StorageError):
                                callbacks = self._end_chain()
                        if not self.read_only:
                            with suppress(StorageError):
                                callbacks += self._sync()
                    finally:
                        self._group = None
                        callbacks, self._ready = self._ready + callbacks, []
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
            self._closed = True
            self._linger_wake.notify_all()
            if self._writer is not None and self._group is None:
                with suppress(DocklineError):
                    callbacks = self._end_chain() if self._chain is not None else []
                    for callback in callbacks + self._sync():
                        callback()
                self._writer.close()
                self._writer = None


class _Group:
    def __init__(self, max_seconds: float, max_units: int) -> None:
        self.max_seconds = max_seconds
        self.max_units = max_units
