"""The scan: which object versions in the bucket are there to process, and which must wait.

Each object is judged on its own, so no file can stop the scan:
- a name that cannot be a key, or a folder that cannot be listed, is listed under a
  printable form of its name with a *refusal version*; reading it fails with the reason;
- a link, FIFO, socket or device gets a version from its stat, not its content: it is
  never opened (the reader then refuses it);
- a regular file is opened the one way the reader opens it (``FolderStore.open_regular``:
  no link at any depth, non-blocking, regular files only) and hashed from that
  descriptor; nothing outside the bucket is ever opened or hashed. A small file's bytes
  are handed over to its reader (``local/handover.py``): it is opened and read once;
- a file another process holds open for writing waits (a read lease tells, on Linux,
  for the file's owner or root); where that cannot be told, a file waits until it has
  been quiet for ``settle_seconds`` (by ctime).

A rescan costs one ``lstat`` per known file and no read: the ``seen`` table remembers which
content hash belongs to which (size, ctime, inode), and one query loads it with whether each
version has settled (``_known``), so a settled file is skipped by a comparison in memory.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import signal
import sqlite3
import stat
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from dockline.config import Settings
from dockline.errors import ObjectGoneError, PermanentError, TransientError
from dockline.local.db import Database, translate
from dockline.local.handover import HandOver
from dockline.local.names import from_printable, name_problems, printable, refused_version
from dockline.local.store import LOCAL_BUCKET, FolderStore, ref_for, special_version, unread_version
from dockline.local.walk import Found, walk_folders
from dockline.models import ObjectRef
from dockline.pipeline import iso
from dockline.routes import nearest_miss

MAX_IGNORED_KEPT = 10_000  # rows of files list --ignored; the count in run's summary is exact

# Linux's F_SETSIG (the fcntl module does not name it). A conflicting open while we hold
# a lease sends the holder a signal; SIGIO's default action would kill the process, so
# the lease asks for SIGURG instead, which is ignored unless handled.
_F_SETSIG = getattr(fcntl, "F_SETSIG", 10)
_LEASES = sys.platform == "linux"
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ScanResult:
    ready: list[ObjectRef]
    unsettled: list[str]  # still being written: wait for them
    ignored: int = 0  # files seen that no route takes (``files list --ignored``)


def scan(
    store: FolderStore, db: Database, settings: Settings, *, settle_seconds: float, memo: KnownMemo | None = None
) -> ScanResult:
    """Every matching object version that is not settled yet, oldest first.

    A known file costs one ``lstat`` (the walk's) and a comparison in memory: one query
    loads what the ``seen`` cache knows of every key, each with whether that version has
    settled. A file whose (size, ctime, inode) matches a settled version is skipped there,
    never opened and given no ref; only the rest are judged, hashed and looked up. With a
    ``memo`` (a watcher's), that query is not run again while nothing was committed since.
    """
    now = time.time()
    handover = store.handover
    handover.start()  # what the last scan kept and nobody read goes now
    ready: list[ObjectRef] = []
    unsettled: list[str] = []
    known = memo.known(db) if memo is not None else _known(db)
    fresh: list[tuple[str, int, int, int, str]] = []
    looked_up: list[ObjectRef] = []  # not known settled: the ledger says whether they are
    root = store.root
    ignored: list[str] = []
    for batch in walk_folders(root, settings.pipeline, ignored):
        for found in batch:
            key, st = found.key, found.st
            hit = known.get(key)
            # ctime, not mtime: every write moves it, nobody can set it (cp -p, rsync -t and
            # touch can set mtime), so a rewrite that keeps size, inode and mtime is hashed again.
            # A key gets into ``seen`` only once it passed name_problems and was hashed.
            if (
                hit is not None
                and hit[0] == st.st_size
                and hit[1] == st.st_ctime_ns
                and hit[2] == st.st_ino
                and stat.S_ISREG(st.st_mode)
            ):
                if hit[3] is None:
                    continue  # this very version has settled
                ready.append(ref_for(root, key, st, hit[3]))
                continue
            problems = found.refused or name_problems(key)
            if problems:
                looked_up.append(
                    ref_for(root, printable(key), st, refused_version(problems, st.st_ino, st.st_mtime_ns))
                )
                continue
            if not stat.S_ISREG(st.st_mode):
                looked_up.append(ref_for(root, key, st, special_version(st)))
                continue
            judged = _judge_new(store, found, now=now, settle_seconds=settle_seconds, handover=handover)
            if judged is None:
                continue  # vanished, or an error the next scan retries
            if isinstance(judged, str):
                unsettled.append(key)
                continue
            opened_st, version = judged
            if len(version) == 64:  # a content hash: worth remembering
                fresh.append((key, opened_st.st_size, opened_st.st_ctime_ns, opened_st.st_ino, version))
            looked_up.append(ref_for(root, key, opened_st, version))
    if fresh:
        with db.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?)", fresh)
    record_ignored(db, settings, ignored)
    todo = ready + _not_settled(db, looked_up)
    todo.sort(key=lambda r: (r.sequencer or "", r.key))
    if len(handover):  # bytes of versions the ledger already settled are nobody's to read
        handover.keep_only((ref.key, ref.version) for ref in todo)
    return ScanResult(ready=todo, unsettled=unsettled, ignored=len(ignored))


# A version is settled when its outcome is durable and announced (a duplicate needs no notice).
_SETTLED = (
    "(f.status IN ('processed', 'failed', 'duplicate', 'conflict', 'superseded') AND f.notified = 1"
    " OR f.status = 'duplicate')"
)
# Constant text only (no value is spliced in): S608 does not apply.
_KNOWN = (
    "SELECT s.key, s.size, s.ctime_ns, s.inode, CASE WHEN f.id IS NULL THEN s.version END FROM seen s"  # noqa: S608
    f" LEFT JOIN files f ON f.bucket = ? AND f.key = s.key AND f.version = s.version AND {_SETTLED}"
)
_SETTLED_AMONG = (  # {rows}: "(?, ?)" per (key, version) asked about; only placeholders are spliced in
    "SELECT f.key, f.version FROM (VALUES {rows}) v JOIN files f"  # noqa: S608
    f" ON f.bucket = ? AND f.key = v.column1 AND f.version = v.column2 WHERE {_SETTLED}"
)
_ASKED_AT_ONCE = 250  # (key, version) pairs per query: 500 parameters, under every SQLite's limit


Known = dict[str, tuple[int, int, int, str | None]]


class KnownMemo:
    """The last ``_known`` answer, kept while the database is unchanged: a watcher's rescan
    beside 50,000 processed files then skips reading 50,000 rows again (~0.1 s of its ~0.4 s).
    ``PRAGMA data_version`` on the reading connection moves with every commit made by any
    other connection, this process's own writer included; a commit racing the query only
    makes the next rescan read again."""

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None
        self._version = -1
        self._known: Known = {}

    def known(self, db: Database) -> Known:
        conn = db.connection()
        try:
            version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        if conn is not self._conn or version != self._version:
            self._known = _known(db)
            self._conn, self._version = conn, version
        return self._known


def _known(db: Database) -> Known:
    """key -> (size, ctime_ns, inode, version) from the ``seen`` cache, in one query; the
    version is None when it has settled (None, not the hash: a settled file needs no
    version, and 50,000 strings not made are time not spent)."""
    conn = db.connection()
    try:
        return {
            key: (size, ctime, inode, version)
            for key, size, ctime, inode, version in conn.execute(_KNOWN, (LOCAL_BUCKET,))
        }
    except sqlite3.Error as exc:
        raise translate(exc) from exc


def _not_settled(db: Database, refs: list[ObjectRef]) -> list[ObjectRef]:
    """The refs whose version the ledger has not settled. These are the new and changed
    files, so the cost follows what changed, not the history: one query per 250 of them
    (an index probe each), not one per file."""
    if not refs:
        return []
    settled: set[tuple[str, str]] = set()
    conn = db.connection()
    try:
        for start in range(0, len(refs), _ASKED_AT_ONCE):
            chunk = refs[start : start + _ASKED_AT_ONCE]
            asked = [part for ref in chunk for part in (ref.key, ref.version)]
            sql = _SETTLED_AMONG.format(rows=",".join(["(?, ?)"] * len(chunk)))
            settled.update(conn.execute(sql, [*asked, LOCAL_BUCKET]))
    except sqlite3.Error as exc:
        raise translate(exc) from exc
    return [ref for ref in refs if (ref.key, ref.version) not in settled]


def record_ignored(db: Database, settings: Settings, keys: list[str]) -> None:
    """Keep the ``ignored`` table equal to the keys this scan saw that no route takes,
    each with its nearest route and why it missed. Written only when the set changed,
    so a rescan of an unchanged bucket writes nothing; at most MAX_IGNORED_KEPT rows."""
    kept = sorted(printable(key) for key in keys)[:MAX_IGNORED_KEPT]
    stored = [str(row["key"]) for row in db.query("SELECT key FROM ignored ORDER BY key")]
    if stored == kept:
        return
    routes = settings.pipeline.table.routes
    rows = []
    for key in kept:
        miss = nearest_miss(routes, key)
        rows.append((key, miss.route if miss else None, miss.why if miss else "", miss.detail if miss else ""))
    seen_at = iso(datetime.now(UTC))
    with db.transaction() as conn:
        conn.execute("DELETE FROM ignored")
        conn.executemany("INSERT INTO ignored VALUES (?, ?, ?, ?, ?)", [(*row, seen_at) for row in rows])


def _judge_new(
    store: FolderStore, found: Found, *, now: float, settle_seconds: float, handover: HandOver
) -> tuple[os.stat_result, str] | str | None:
    """(stat, version) of a file not hashed before; "unsettled" if it is being written.
    A small file's bytes go to ``handover``, for its reader: this read is its only one."""
    key, st = found.key, found.st
    try:
        # The reader's own way in, from the folder the walk holds open (same O_NOFOLLOW chain).
        fd, opened = store.open_regular_at(found.folder, found.name, key)
    except ObjectGoneError:
        return None
    except PermanentError:
        # A link or FIFO swapped in since the walk, or no permission to read: not read
        # here; the reader refuses it with the reason. A chmod or a new file is a new version.
        return st, special_version(st)
    except TransientError:
        return None
    try:
        writing = held_for_writing(fd)
        if writing or (writing is None and abs(now - opened.st_ctime) < settle_seconds):
            return "unsettled"
        if store.too_big(opened):
            return opened, unread_version(opened)  # never read more than the limit, not even to hash
        if not handover.wants(opened.st_size):
            return opened, _sha256(fd)
        data = _read_all(fd, opened.st_size)
        version = hashlib.sha256(data).hexdigest()
        handover.offer(key, version, opened, data)
        return opened, version
    except OSError:
        return None  # a read error now (EIO): the next scan tries again
    finally:
        os.close(fd)


def version_of(store: FolderStore, key: str, st: os.stat_result) -> str:
    """The version of ``key`` now, read the one safe way; a stand-in for what must not be read."""
    if not stat.S_ISREG(st.st_mode):
        return special_version(st)
    try:
        fd, opened = store.open_regular(key)
    except PermanentError:
        return special_version(st)
    try:
        if store.too_big(opened):
            return unread_version(opened)
        return _sha256(fd)
    finally:
        os.close(fd)


def current_ref(store: FolderStore, key: str) -> ObjectRef | None:
    """The object listed as ``key`` (its printable form) as a scan would see it now, for a
    redrive plan; None when it is gone, is a folder, or its folders cannot be entered.

    Never raises for a key a scan listed: a name that cannot be a key gets its refusal
    version again, so redriving it fails that one letter, not the whole redrive.
    """
    if key.endswith("/"):  # a folder reported whole: its files are scanned on their own
        return None
    raw = from_printable(key)
    *folders, name = raw.split("/")
    try:
        fd = os.open(store.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for part in folders:
            inner = os.open(part, _FOLDER, dir_fd=fd)
            os.close(fd)
            fd = inner
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        problems = name_problems(raw)
        if problems:
            version = refused_version(problems, st.st_ino, st.st_mtime_ns)
        elif not stat.S_ISREG(st.st_mode):
            version = special_version(st)
        else:
            try:
                file_fd, st = store.open_regular_at(fd, name, raw)
            except ObjectGoneError:
                return None
            except PermanentError:
                version = special_version(st)
            else:
                try:
                    version = unread_version(st) if store.too_big(st) else _sha256(file_fd)
                finally:
                    os.close(file_fd)
    except (OSError, TransientError):
        return None
    finally:
        os.close(fd)
    return ref_for(store.root, key, st, version)


def _read_all(fd: int, size: int) -> bytes:
    """Every byte to the end. ``size`` is the fstat's: asking for one byte more, a short
    read is the end of a regular file, so a small file costs one read, not two. A file
    that grew or shrank meanwhile is read on to the end (its stat then no longer matches
    and its reader reads it again)."""
    first = os.read(fd, size + 1)
    if len(first) == size:
        return first
    chunks = [first]
    while chunk := os.read(fd, _CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


def _sha256(fd: int) -> str:
    digest = hashlib.sha256()
    while chunk := os.read(fd, _CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def held_for_writing(fd: int) -> bool | None:
    """Does any process hold this file open for writing? None when it cannot be told.

    Linux grants a read lease only while nobody has the file open for writing, and
    only to its owner or a process with CAP_LEASE. The lease is released at once: a
    writer opening the file meanwhile waits for microseconds, not for the lease-break time.
    """
    if not _LEASES:
        return None
    try:
        fcntl.fcntl(fd, _F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EBUSY):
            return True
        return None  # EACCES (not the owner), EINVAL (no leases on this file system), ...
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return False


# Versions the ledger holds work for: reopened or unsettled, or settled with their
# notification still owed (a process died between settle and publish). The second part
# reads the settled rows (no index by ``notified``: one would cost every settle), only
# after some commit moved ``data_version``.
_LEDGER_HAS_WORK = (
    "SELECT 1 FROM files WHERE status IN ('pending', 'processing')"
    " OR (status IN ('processed', 'failed', 'conflict') AND notified = 0) LIMIT 1"
)


class LedgerWatch:
    """Tells a sleeping watcher when the ledger, not the bucket, has work for it: versions
    another process reopened (``reprocess``, ``dlq redrive``), left unsettled (it died, or
    works on them now) or left owing their notification (it died before publishing).
    inotify cannot see those; the old watcher found them by rescanning every
    ``poll_seconds``. Cheap enough to ask that often: ``PRAGMA data_version`` (no change, no
    query), then one query (``_LEDGER_HAS_WORK``)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._version: int | None = None
        self._alert = True  # unsettled versions were there at the last look: look again

    def wants_scan(self) -> bool:
        try:
            conn = self._db.connection()
            version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            if version == self._version and not self._alert:
                return False
            self._version = version
            self._alert = (
                conn.execute(_LEDGER_HAS_WORK).fetchone() is not None
            )
        except sqlite3.Error:
            return True  # cannot tell: a scan will say what is wrong
        return self._alert

    def quiet(self) -> None:
        """A scan it asked for found nothing to do (the unsettled versions are gone from the
        bucket): no more looks until the ledger changes."""
        self._alert = False
