"""The embedded engine: a folder is the bucket, SQLite the ledger, a local topic.

``run_once`` processes every matching object version not settled yet and returns;
``watch`` keeps doing that as files arrive (inotify through watchdog, plus a
periodic rescan as a safety net). A rescan costs one ``stat`` per known file: the
``seen`` table remembers which content hash belongs to which (size, ctime, inode).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dockline.config import Settings
from dockline.errors import BusyError, DocklineError, TransientError, UsageError
from dockline.local.db import Database, StorageError
from dockline.local.ledger import SQLiteLedger
from dockline.local.lock import DatabaseUnavailable
from dockline.local.store import FolderStore, ref_for, sha256_file, special_version, unread_version
from dockline.local.subscriptions import build_subscriptions
from dockline.local.topic import LocalTopic, SQLiteDeadLetters
from dockline.models import DeadLetter, ObjectRef, Outcome, Status
from dockline.pipeline import Pipeline, iso

log = logging.getLogger("dockline.local")


@dataclass
class RunSummary:
    outcomes: list[Outcome] = field(default_factory=list)  # committed and durable only
    busy: int = 0  # held by another process
    errors: list[str] = field(default_factory=list)  # files left for a later run
    seconds: float = 0.0
    trouble: str | None = None  # the disk or the lock stopped the run; the rest is left for later
    stopped: bool = False  # a signal stopped the run before the end
    released: int = 0  # files in flight at the stop, released for the next run

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    def add(self, other: RunSummary) -> None:
        self.outcomes += other.outcomes
        self.busy += other.busy
        self.errors += other.errors
        self.trouble = other.trouble or self.trouble
        self.stopped = self.stopped or other.stopped
        self.released += other.released


@dataclass(frozen=True)
class ScanResult:
    ready: list[ObjectRef]
    unsettled: list[str]  # still being written: wait for them


class LocalEngine:
    def __init__(
        self,
        data_dir: Path,
        settings: Settings,
        *,
        echo: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        read_only: bool = False,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        """Open (or, unless ``read_only``, create) the data dir.

        Raises UsageError when ``data_dir``'s parent does not exist (a typo must not
        create a tree) and DocklineError, one line, when it cannot be read or written.
        """
        self.data_dir = data_dir
        self.settings = settings
        self.bucket_dir = data_dir / "bucket"
        self.staging_dir = data_dir / "tmp"  # outside the bucket: never seen by a scan
        if not read_only:
            _prepare_data_dir(data_dir, self.bucket_dir)
        self.db = Database(
            data_dir / "dockline.db",
            read_only=read_only,
            lock_wait_seconds=settings.local.lock_wait_seconds,
            on_wait=on_wait,
        )
        self._in_flight: set[ObjectRef] = set()
        self._in_flight_lock = threading.Lock()
        self.finished = 0  # files settled (durably) by this engine since it was opened
        self.store = FolderStore(self.bucket_dir, max_object_bytes=settings.pipeline.max_object_bytes)
        self.ledger = SQLiteLedger(self.db, lease_seconds=settings.local.lease_seconds)
        self.topic = LocalTopic(self.db, subscriptions=build_subscriptions(settings.local.subscriptions), echo=echo)
        self.dead_letters = SQLiteDeadLetters(self.db)
        self._clock = clock
        self.pipeline = Pipeline(
            settings=settings.pipeline,
            store=self.store,
            ledger=self.ledger,
            notifier=self.topic,
            dead_letters=self.dead_letters,
            clock=clock,
        )

    # -- scanning -----------------------------------------------------------------
    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        prefix = self.settings.pipeline.prefix
        start = self.bucket_dir.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.bucket_dir
        if start.is_symlink() or not start.is_dir():
            return
        for folder, dirs, files in os.walk(start, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel = Path(folder).relative_to(self.bucket_dir).as_posix()
            for name in sorted(files):
                if name.startswith("."):  # rsync's and editors' temporary files
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if not self.settings.pipeline.matches(key):
                    continue
                try:
                    yield key, os.lstat(os.path.join(folder, name))  # noqa: PTH118 - hot loop, str paths
                except FileNotFoundError:
                    continue

    def scan(self, *, settle_seconds: float | None = None) -> ScanResult:
        """Every matching object version that is not settled yet, oldest first."""
        settle = self.settings.local.settle_seconds if settle_seconds is None else settle_seconds
        now = time.time()
        ready: list[ObjectRef] = []
        unsettled: list[str] = []
        cache = {row["key"]: row for row in self.db.query("SELECT key, size, ctime_ns, inode, version FROM seen")}
        fresh: list[tuple[str, int, int, int, str]] = []
        for key, st in self._walk():
            if not stat.S_ISREG(st.st_mode):
                ready.append(ref_for(self.bucket_dir, key, st, special_version(st)))
                continue
            # ctime, not mtime: every write moves it, nobody can set it (cp -p, rsync -t and
            # touch can set mtime to the past or the future), so it tells a file being written.
            if abs(now - st.st_ctime) < settle:
                unsettled.append(key)
                continue
            hit = cache.get(key)
            # The cache keys on ctime for the same reason: a rewrite that
            # keeps size, inode and mtime must still be hashed again.
            if hit is not None and (hit["size"], hit["ctime_ns"], hit["inode"]) == (
                st.st_size,
                st.st_ctime_ns,
                st.st_ino,
            ):
                version = str(hit["version"])
            else:
                try:
                    version = self._version_of(key, st)
                except PermissionError:
                    # Not skipped: a file nobody can read must still end up failed, with a
                    # reason, instead of lying there unseen. chmod changes ctime: a new version.
                    version = special_version(st)
                except OSError:
                    continue  # vanished now; the next scan decides
                fresh.append((key, st.st_size, st.st_ctime_ns, st.st_ino, version))
            ready.append(ref_for(self.bucket_dir, key, st, version))
        if fresh:
            with self.db.transaction() as conn:
                conn.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?)", fresh)
        settled = {
            (row["key"], row["version"])
            for row in self.db.query(
                "SELECT key, version FROM files WHERE status IN ('processed', 'failed', 'duplicate', 'conflict')"
                " AND notified = 1 OR status = 'duplicate'"
            )
        }
        todo = [ref for ref in ready if (ref.key, ref.version) not in settled]
        todo.sort(key=lambda r: (r.sequencer or "", r.key))
        return ScanResult(ready=todo, unsettled=unsettled)

    def _version_of(self, key: str, st: os.stat_result) -> str:
        """The SHA-256 of a regular file's bytes; a stand-in for what must not be read."""
        if not stat.S_ISREG(st.st_mode):
            return special_version(st)
        if self.store.too_big(st):
            return unread_version(st)  # never read more than max_object_bytes, not even to hash
        return sha256_file(self.store.path_for(key))

    # -- processing ---------------------------------------------------------------
    def process_one(self, ref: ObjectRef, summary: RunSummary, *, attempt: int = 1) -> None:
        try:
            outcome = self.pipeline.process(ref, attempt=attempt)
        except BusyError:
            summary.busy += 1
            return
        except TransientError as exc:
            settled = self._final_status(ref)
            if settled is not None:
                # The ledger has the file's final state; only its notification failed. Giving
                # up now would turn a processed file into a failed one: leave it to the outbox.
                summary.errors.append(f"{ref.key}: {settled}, but its notification is not sent yet: {exc}")
                return
            try:
                outcome = self.pipeline.give_up(ref, str(exc), attempts=self.pipeline.retry.attempts)
            except DocklineError as again:
                summary.errors.append(f"{ref.key}: {again}")
                return
        except DocklineError as exc:
            summary.errors.append(f"{ref.key}: {exc}")
            return
        except Exception as exc:  # a bug must not stop the other files
            log.exception("internal error while processing %s", ref.key)
            summary.errors.append(f"{ref.key}: internal error: {type(exc).__name__}: {exc}")
            return
        summary.outcomes.append(outcome)

    def _final_status(self, ref: ObjectRef) -> Status | None:
        try:
            with self.db.transaction() as conn:  # the writer's view: it sees an open group's state
                row = conn.execute(
                    "SELECT status FROM files WHERE bucket = ? AND key = ? AND version = ?",
                    (ref.bucket, ref.key, ref.version),
                ).fetchone()
        except DocklineError:
            return None
        status = Status(row[0]) if row else None
        return status if status is not None and status.is_final else None

    def process(
        self,
        refs: list[ObjectRef],
        *,
        workers: int,
        progress: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> RunSummary:
        """Process ``refs`` until done, ``stop`` is set, or the disk or lock fails (``trouble``).

        An outcome is counted only once its commit is durable (``Database.on_commit``).
        """
        summary = RunSummary()
        started = time.perf_counter()
        self.db.trouble = None  # try again: the disk may have space, the holder may be gone
        with self.db.group():
            self._process(refs, workers, summary, progress, stop or threading.Event())
        if self.db.trouble is not None:
            summary.trouble = str(self.db.trouble)
        summary.seconds = time.perf_counter() - started
        return summary

    def _process(
        self,
        refs: list[ObjectRef],
        workers: int,
        summary: RunSummary,
        progress: Callable[[int], None] | None,
        stop: threading.Event,
    ) -> None:
        # Each ledger and topic write commits on its own, so the lock is held only while SQL
        # runs, never while a file is read; their fsync is shared (group commit, 50 ms).
        lock = threading.Lock()

        def counted(local: RunSummary) -> None:
            with lock:
                summary.outcomes += local.outcomes
                self.finished += len(local.outcomes)

        def work(ref: ObjectRef) -> None:
            if stop.is_set() or self.db.trouble is not None:
                summary.stopped = summary.stopped or stop.is_set()
                return  # not started: left for the next run, which takes it at once
            with self._in_flight_lock:
                self._in_flight.add(ref)
            local = RunSummary()
            try:
                self.process_one(ref, local)
            finally:
                with self._in_flight_lock:
                    self._in_flight.discard(ref)
            with lock:
                summary.busy += local.busy
                summary.errors += local.errors
            if local.outcomes:
                self.db.on_commit(lambda: counted(local))
            if progress:
                progress(1)

        if workers <= 1:
            for ref in refs:
                work(ref)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dockline-worker") as pool:
                list(pool.map(work, refs))

    def in_flight(self) -> int:
        with self._in_flight_lock:
            return len(self._in_flight)

    def release_in_flight(self) -> int:
        """Give up the files in flight: their leases are cleared so the next run takes them
        at once. Returns how many. Holds this process's writers off for good (``db.idle``
        is entered, never left): call it just before exiting."""
        idle = self.db.idle()
        idle.__enter__()  # no unit of ours runs from now on, so none can settle a released file
        count = self.in_flight()
        if count:
            with contextlib.suppress(DocklineError), self.db.transaction() as conn:
                conn.execute(
                    "UPDATE files SET lease_owner = NULL, lease_until = NULL"
                    " WHERE lease_owner = ? AND status = 'processing'",
                    (self.ledger.owner,),
                )
            with contextlib.suppress(DocklineError):
                self.db.commit_now()
        return count

    def run_once(
        self,
        *,
        workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        max_wait_seconds: float = 30.0,
        stop: threading.Event | None = None,
    ) -> RunSummary:
        """Process everything not settled yet, waiting for files still being written.

        Stops early, leaving the rest for the next run, when ``stop`` is set or the disk
        or the lock fails (``RunSummary.trouble``). Raises DocklineError when the scan cannot run.
        """
        workers = workers or self.settings.local.concurrency
        stop = stop or threading.Event()
        total = RunSummary()
        started = time.perf_counter()
        self.topic.flush()  # deliveries a previous run recorded but did not get to send
        deadline = time.monotonic() + max_wait_seconds
        while not stop.is_set():
            try:
                result = self.scan()
            except DatabaseUnavailable as exc:
                total.trouble = str(exc)
                break
            done = 0

            def tick(n: int, _size: int = len(result.ready)) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(done, _size)

            total.add(self.process(result.ready, workers=workers, progress=tick, stop=stop))
            if total.trouble or stop.is_set():
                break
            if not result.unsettled or time.monotonic() > deadline:
                for key in result.unsettled:
                    total.errors.append(f"{key}: still being written; left for the next run")
                break
            stop.wait(self.settings.local.settle_seconds)
        total.stopped = total.stopped or stop.is_set()
        total.seconds = time.perf_counter() - started
        return total

    def watch(
        self,
        *,
        workers: int | None = None,
        stop: threading.Event | None = None,
        on_summary: Callable[[RunSummary], None] | None = None,
        on_trouble: Callable[[str], None] | None = None,
    ) -> None:
        """Process files as they arrive until ``stop`` is set.

        A full or failing disk, or a lock held too long, never ends it: it says so once
        per attempt (``on_trouble``), backs off (1 s doubling to 30 s) and tries again.
        """
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        stop = stop or threading.Event()
        dirty = threading.Event()
        report = on_trouble or log.warning

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("created", "modified", "moved", "closed"):
                    dirty.set()

        observer = Observer()
        observer.schedule(_Handler(), str(self.bucket_dir), recursive=True)
        observer.start()
        backoff = 1.0
        try:
            dirty.set()
            while not stop.is_set():
                dirty.wait(timeout=self.settings.local.poll_seconds)
                if stop.is_set():
                    break
                dirty.clear()
                trouble: str | None = None
                try:
                    result = self.scan()
                except DatabaseUnavailable as exc:
                    trouble, result = str(exc), ScanResult(ready=[], unsettled=[])
                if result.ready:
                    summary = self.process(result.ready, workers=workers or self.settings.local.concurrency, stop=stop)
                    trouble = trouble or summary.trouble
                    if on_summary:
                        on_summary(summary)
                if trouble is not None:
                    report(f"{trouble}; trying again in {backoff:g}s")
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                    dirty.set()
                    continue
                backoff = 1.0
                if result.unsettled:
                    # come back when the writer has been quiet for settle_seconds
                    stop.wait(self.settings.local.settle_seconds)
                    dirty.set()
        finally:
            observer.stop()
            observer.join(timeout=5)

    def now(self) -> str:
        return iso(self._clock())

    # -- dead letters -------------------------------------------------------------
    def plan_redrive(self, ids: list[str] | None) -> list[RedriveStep]:
        """What a redrive would do for these letters (all when ``ids`` is None).

        Raises UsageError for an unknown id.
        """
        letters = list(self.dead_letters.list())
        if ids is not None:
            known = {letter.id: letter for letter in letters}
            missing = [i for i in ids if i not in known]
            if missing:
                raise UsageError(f"no dead letter with id {missing[0]!r} (see `dockline dlq list`)")
            letters = [known[i] for i in ids]
        steps: list[RedriveStep] = []
        for letter in letters:
            try:
                st = os.lstat(self.store.path_for(letter.ref.key))
            except FileNotFoundError:
                steps.append(RedriveStep(letter, None, "skip: the object no longer exists"))
                continue
            version = self._version_of(letter.ref.key, st)
            ref = ref_for(self.bucket_dir, letter.ref.key, st, version)
            action = "reprocess (unchanged)" if version == letter.ref.version else "process the new version"
            steps.append(RedriveStep(letter, ref, action))
        return steps

    def redrive(self, steps: list[RedriveStep]) -> list[tuple[RedriveStep, Outcome | None]]:
        """Carry out a plan; a letter is removed once its object settles other than failed."""
        results: list[tuple[RedriveStep, Outcome | None]] = []
        for step in steps:
            if step.ref is None:
                results.append((step, None))
                continue
            attempt = 1
            if step.ref.version == step.letter.ref.version:
                self.ledger.reopen(step.ref, now=self.now())
                attempt = step.letter.attempts + 1  # the same version again: count the attempts
            summary = RunSummary()
            self.process_one(step.ref, summary, attempt=attempt)
            outcome = summary.outcomes[0] if summary.outcomes else None
            if outcome is not None and (
                outcome.status is not Status.FAILED or step.ref.version != step.letter.ref.version
            ):
                self.dead_letters.remove(step.letter.id)
            results.append((step, outcome))
        return results


def _prepare_data_dir(data_dir: Path, bucket_dir: Path) -> None:
    """Create the data dir (its parent must exist) and its bucket folder; one line if not."""
    if not data_dir.is_dir():
        parent = data_dir.absolute().parent
        if not parent.is_dir():
            raise UsageError(
                f"--data-dir {data_dir}: {parent} does not exist"
                " (create it first; dockline creates only the last folder)"
            )
    try:
        data_dir.mkdir(exist_ok=True)
        bucket_dir.mkdir(exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        what = f"cannot write to the data dir {data_dir}: {reason}"
        if exc.errno in (errno.ENOSPC, errno.EIO):
            raise StorageError(what) from exc
        raise DocklineError(what + " (read-only commands such as `dockline files list` still work)") from exc


@dataclass(frozen=True)
class RedriveStep:
    letter: DeadLetter
    ref: ObjectRef | None
    action: str
