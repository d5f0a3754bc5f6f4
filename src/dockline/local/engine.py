"""The embedded engine: a folder is the bucket, SQLite the ledger, a local topic.

``run_once`` processes every matching object version not settled yet and returns;
``watch`` keeps doing that as files arrive (inotify, ``local/inotify.py``, plus a
rare full rescan as a safety net). The scan itself lives in ``local/scan.py``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dockline.config import Settings
from dockline.errors import DocklineError, UsageError
from dockline.lifecycle import Lifecycle, Result, Step, Work
from dockline.local.db import Database, StorageError
from dockline.local.deliveries import DeliveryWorker
from dockline.local.ledger import SQLiteLedger
from dockline.local.lock import DatabaseUnavailable
from dockline.local.progress import Board
from dockline.local.scan import KnownMemo, ScanResult, current_ref, scan, version_of
from dockline.local.store import FolderStore
from dockline.local.subscriptions import build_subscriptions
from dockline.local.topic import LocalTopic, SQLiteDeadLetters
from dockline.models import DeadLetter, ObjectRef, Outcome, Status
from dockline.pipeline import Pipeline, iso

if TYPE_CHECKING:
    from dockline.local.inotify import BucketWatch
    from dockline.redrive import RedriveStep

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
    ignored: int = 0  # files the last scan saw that no route takes

    def count(self, status: Status) -> int:
        """Files this run settled with ``status`` (not those settled before it: ``earlier``)."""
        return sum(1 for o in self.outcomes if o.status is status and not o.earlier)

    @property
    def settled(self) -> int:
        """Files this run settled (two racing runs never both count a file)."""
        return sum(1 for o in self.outcomes if not o.earlier)

    @property
    def earlier(self) -> int:
        """Files this run found settled and announced by another run since its scan."""
        return sum(1 for o in self.outcomes if o.earlier)

    def add(self, other: RunSummary) -> None:
        self.outcomes += other.outcomes
        self.busy += other.busy
        self.errors += other.errors
        self.trouble = other.trouble or self.trouble
        self.stopped = self.stopped or other.stopped
        self.released += other.released
        self.ignored = other.ignored or self.ignored


def _count(result: Result, summary: RunSummary) -> None:
    """What the lifecycle's result means for a run: an outcome, a file held elsewhere, or one left."""
    if result.step is Step.SETTLED:
        assert result.outcome is not None
        summary.outcomes.append(result.outcome)
    elif result.step is Step.BUSY:
        summary.busy += 1
    else:
        summary.errors.append(f"{result.work.ref.key}: {result.reason}")


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
            _prepare_data_dir(data_dir, self.bucket_dir, prefixes=settings.pipeline.table.prefixes)
        self.db = Database(
            data_dir / "dockline.db",
            read_only=read_only,
            lock_wait_seconds=settings.local.lock_wait_seconds,
            on_wait=on_wait,
        )
        self._in_flight: set[ObjectRef] = set()
        # Reentrant: the SIGTERM handler (run/_Stopper) counts files in flight on the main
        # thread, which may be inside work() holding this lock (one worker runs on it).
        self._in_flight_lock = threading.RLock()
        self.finished = 0  # files settled (durably) by this engine since it was opened
        self.store = FolderStore(self.bucket_dir, max_object_bytes=settings.pipeline.max_object_bytes)
        self.ledger = SQLiteLedger(self.db, lease_seconds=settings.local.lease_seconds)
        subscriptions = build_subscriptions(settings.local.subscriptions)
        self.deliveries = DeliveryWorker(
            self.db.path, subscriptions, horizon_seconds=settings.local.delivery_horizon_seconds, clock=clock
        )
        self.topic = LocalTopic(
            self.db, subscriptions=subscriptions, echo=echo, clock=clock, on_publish=self.deliveries.wake
        )
        self.dead_letters = SQLiteDeadLetters(self.db)
        self._clock = clock
        self.board = Board()  # progress of the files in flight, for the CLI (local/progress.py)
        self._known = KnownMemo()  # what the last scan loaded of `seen`, while the ledger is unchanged
        self.pipeline = Pipeline(
            settings=settings.pipeline,
            store=self.store,
            ledger=self.ledger,
            notifier=self.topic,
            dead_letters=self.dead_letters,
            clock=clock,
            on_batch=self._on_batch,
            unit=self.db.transaction,  # the batch path settles many files in one unit
        )
        self.lifecycle = Lifecycle(self.pipeline)

    def _on_batch(self, ref: ObjectRef, records: int, bytes_done: int) -> None:
        self.board.batch(ref, records, bytes_done)
        # Persisted only after a full batch, i.e. when more may follow: a file that fits in
        # one batch (most small files) settles right after, and settle writes its numbers.
        if records % self.settings.pipeline.batch_size == 0:
            self.ledger.progress(ref, records=records, bytes_done=bytes_done)

    # -- scanning -----------------------------------------------------------------
    def scan(self, *, settle_seconds: float | None = None) -> ScanResult:
        """Every matching object version that is not settled yet, oldest first."""
        settle = self.settings.local.settle_seconds if settle_seconds is None else settle_seconds
        return scan(self.store, self.db, self.settings, settle_seconds=settle, memo=self._known)

    def _version_of(self, key: str, st: os.stat_result) -> str:
        """The version a scan would give ``key`` now (for redrive plans)."""
        return version_of(self.store, key, st)

    # -- processing ---------------------------------------------------------------
    def process_one(self, ref: ObjectRef, summary: RunSummary, *, attempt: int = 1) -> None:
        """Run one version through the core lifecycle and count what became of it."""
        _count(self.lifecycle.run(Work(ref, attempt, give_up_after=self.pipeline.retry.attempts)), summary)

    def process_batch(self, refs: list[ObjectRef], summary: RunSummary, *, attempt: int = 1) -> None:
        """Run small files through the core's batch path and count what became of each."""
        works = [Work(ref, attempt, give_up_after=self.pipeline.retry.attempts) for ref in refs]
        for result in self.lifecycle.run_batch(works):
            _count(result, summary)

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

        def work(task: list[ObjectRef]) -> None:
            if stop.is_set() or self.db.trouble is not None:
                summary.stopped = summary.stopped or stop.is_set()
                return  # not started: left for the next run, which takes it at once
            with self._in_flight_lock:
                self._in_flight.update(task)
            local = RunSummary()
            if len(task) == 1:
                self.board.start(task[0])
                try:
                    self.process_one(task[0], local)
                finally:
                    with self._in_flight_lock:
                        self._in_flight.discard(task[0])
                    seconds = self.board.finish(task[0])
            else:
                started = self.board.start_batch()
                try:
                    self.process_batch(task, local)
                finally:
                    with self._in_flight_lock:
                        self._in_flight.difference_update(task)
                    seconds = self.board.finish_batch(task, sum(o.records for o in local.outcomes), started)
            with lock:
                summary.busy += local.busy
                summary.errors += local.errors
            if local.outcomes:
                self.db.on_commit(lambda: counted(local))
                if self.board.listened:  # watch mode's line per settled file
                    for outcome in local.outcomes:
                        self.db.on_commit(lambda outcome=outcome: self.board.settled(outcome, seconds))  # type: ignore[misc]
            if progress:
                progress(len(task))

        tasks = batches(refs, workers=workers)
        if workers <= 1:
            for task in tasks:
                work(task)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dockline-worker") as pool:
                list(pool.map(work, tasks))

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
        started = time.perf_counter()
        self.deliveries.start()  # in its own threads; also sends what a previous run left
        try:
            return self._run_once(workers, progress, max_wait_seconds, stop, started)
        finally:
            self.deliveries.stop(self.settings.local.stop_grace_seconds)  # what is due now, bounded

    def _run_once(
        self,
        workers: int,
        progress: Callable[[int, int], None] | None,
        max_wait_seconds: float,
        stop: threading.Event,
        started: float,
    ) -> RunSummary:
        total = RunSummary()
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

            self.board.plan(result.ready)
            total.add(self.process(result.ready, workers=workers, progress=tick, stop=stop))
            total.ignored = result.ignored
            if total.trouble or stop.is_set():
                break
            if not result.unsettled or time.monotonic() > deadline:
                for key in result.unsettled:
                    total.errors.append(f"{key}: still being written; left for the next run")
                break
            # A writer still holds a file open: look again soon (never a busy loop at settle 0).
            stop.wait(max(self.settings.local.settle_seconds, 0.1))
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
        watch: BucketWatch | None = None,
    ) -> None:
        """Process files as they arrive until ``stop`` is set: see ``local/watching.py``."""
        from dockline.local.watching import watch_bucket_loop

        watch_bucket_loop(self, workers=workers, stop=stop, on_summary=on_summary, on_trouble=on_trouble, watch=watch)

    def now(self) -> str:
        return iso(self._clock())

    # -- dead letters -------------------------------------------------------------
    def plan_redrive(self, ids: list[str] | None) -> list[RedriveStep]:
        """What a redrive would do for these letters (all when ``ids`` is None).

        Raises UsageError for an unknown id.
        """
        from dockline import redrive  # only dlq redrive: start-up

        return redrive.plan(list(self.dead_letters.list()), ids, self._locate)

    def _locate(self, letter: DeadLetter) -> tuple[ObjectRef | None, str]:
        # As a scan sees it now: a name that cannot be a key fails its own letter again,
        # never the whole redrive.
        ref = current_ref(self.store, letter.ref.key)
        return (ref, "") if ref is not None else (None, "the object no longer exists")

    def redrive(self, steps: list[RedriveStep]) -> list[tuple[RedriveStep, Outcome | None]]:
        """Carry out a plan; a letter is removed once it is resolved (see ``redrive.execute``)."""
        results: list[tuple[RedriveStep, Outcome | None]] = []
        from dockline import redrive

        for done in redrive.execute(steps, self.lifecycle, now=self.now):
            if done.resolved:
                self.dead_letters.remove(done.step.letter.id)
            results.append((done.step, done.outcome))
        return results


# The batch path (``dockline.batch``) takes files up to SMALL_FILE_BYTES, up to BATCH_FILES
# or BATCH_BYTES a batch; a batch's records sit in memory together until it settles. Larger
# files stream through the per-file path, one batch of records at a time.
SMALL_FILE_BYTES = 64 * 1024
BATCH_FILES = 200
BATCH_BYTES = 4 * 1024 * 1024


def batches(refs: list[ObjectRef], *, workers: int = 1) -> list[list[ObjectRef]]:
    """``refs`` in order, as tasks: consecutive small files grouped into batches, each other
    file on its own. A batch holds at most a ``workers``-th of the small files, so every
    worker gets some."""
    small_files = sum(1 for ref in refs if ref.size is not None and ref.size <= SMALL_FILE_BYTES)
    most = max(1, min(BATCH_FILES, -(-small_files // max(1, workers))))
    tasks: list[list[ObjectRef]] = []
    batch: list[ObjectRef] = []
    size = 0
    for ref in refs:
        small = ref.size is not None and ref.size <= SMALL_FILE_BYTES
        if batch and (not small or len(batch) >= most or size + (ref.size or 0) > BATCH_BYTES):
            tasks.append(batch)
            batch, size = [], 0
        if small:
            batch.append(ref)
            size += ref.size or 0
        else:
            tasks.append([ref])
    if batch:
        tasks.append(batch)
    return tasks


def _prepare_data_dir(data_dir: Path, bucket_dir: Path, *, prefixes: tuple[str, ...] = ()) -> None:
    """Create the data dir (its parent must exist), its bucket folder and each route prefix's
    folder in it (``incoming/``, so a plain ``cp x.json bucket/incoming/`` works); one line if not."""
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
    for prefix in prefixes:
        _make_prefix_folder(bucket_dir, prefix)


def _make_prefix_folder(bucket_dir: Path, prefix: str) -> None:
    """Create the folders of ``prefix`` (``incoming`` of ``incoming/``; ``drop`` of ``drop/in-``)
    inside the bucket, each opened relative to the one before and never through a link. Only
    folders are made, never anything inside them. A link or a file in the way is left alone:
    the scan refuses it with its reason; a folder that cannot be made is made by ``put`` or
    the user."""
    names = [name for name in prefix.rpartition("/")[0].split("/") if name]
    if not names or any(name in (".", "..") for name in names):
        return
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(bucket_dir, flags)
    except OSError:
        return
    try:
        for name in names:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=fd)
            inner = os.open(name, flags, dir_fd=fd)
            os.close(fd)
            fd = inner
    except OSError:
        return
    finally:
        os.close(fd)
