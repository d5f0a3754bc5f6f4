"""The embedded engine: a folder is the bucket, SQLite the ledger, a local topic.

``run_once`` processes every matching object version not settled yet and returns;
``watch`` keeps doing that as files arrive (inotify through watchdog, plus a
periodic rescan as a safety net). The scan itself lives in ``local/scan.py``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dockline import redrive
from dockline.config import Settings
from dockline.lifecycle import Lifecycle, Step, Work
from dockline.local.db import Database
from dockline.local.deliveries import DeliveryWorker
from dockline.local.ledger import SQLiteLedger
from dockline.local.scan import ScanResult, current_ref, scan, version_of
from dockline.local.store import FolderStore
from dockline.local.subscriptions import build_subscriptions
from dockline.local.topic import LocalTopic, SQLiteDeadLetters
from dockline.models import DeadLetter, ObjectRef, Outcome, Status
from dockline.pipeline import Pipeline, iso
from dockline.redrive import RedriveStep

log = logging.getLogger("dockline.local")


@dataclass
class RunSummary:
    outcomes: list[Outcome] = field(default_factory=list)
    busy: int = 0  # held by another process
    errors: list[str] = field(default_factory=list)  # files left for a later run
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)


class LocalEngine:
    def __init__(
        self,
        data_dir: Path,
        settings: Settings,
        *,
        echo: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.bucket_dir = data_dir / "bucket"
        self.staging_dir = data_dir / "tmp"  # outside the bucket: never seen by a scan
        self.bucket_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(data_dir / "dockline.db")
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
        self.pipeline = Pipeline(
            settings=settings.pipeline,
            store=self.store,
            ledger=self.ledger,
            notifier=self.topic,
            dead_letters=self.dead_letters,
            clock=clock,
        )
        self.lifecycle = Lifecycle(self.pipeline)

    # -- scanning -----------------------------------------------------------------
    def scan(self, *, settle_seconds: float | None = None) -> ScanResult:
        """Every matching object version that is not settled yet, oldest first."""
        settle = self.settings.local.settle_seconds if settle_seconds is None else settle_seconds
        return scan(self.store, self.db, self.settings, settle_seconds=settle)

    def _version_of(self, key: str, st: os.stat_result) -> str:
        """The version a scan would give ``key`` now (for redrive plans)."""
        return version_of(self.store, key, st)

    # -- processing ---------------------------------------------------------------
    def process_one(self, ref: ObjectRef, summary: RunSummary, *, attempt: int = 1) -> None:
        """Run one version through the core lifecycle and count what became of it."""
        result = self.lifecycle.run(Work(ref, attempt, give_up_after=self.pipeline.retry.attempts))
        if result.step is Step.SETTLED:
            assert result.outcome is not None
            summary.outcomes.append(result.outcome)
        elif result.step is Step.BUSY:
            summary.busy += 1
        else:
            summary.errors.append(f"{ref.key}: {result.reason}")

    def process(
        self, refs: list[ObjectRef], *, workers: int, progress: Callable[[int], None] | None = None
    ) -> RunSummary:
        summary = RunSummary()
        started = time.perf_counter()
        with self.db.group():
            self._process(refs, workers, summary, progress)
        summary.seconds = time.perf_counter() - started
        return summary

    def _process(
        self, refs: list[ObjectRef], workers: int, summary: RunSummary, progress: Callable[[int], None] | None
    ) -> None:
        # Every ledger and topic write of these files joins one SQLite transaction, committed
        # (one fsync) every 50 ms: a crash loses at most that much work, which the next run
        # redoes; it never leaves half a file's state.
        if workers <= 1:
            for ref in refs:
                self.process_one(ref, summary)
                if progress:
                    progress(1)
        else:
            lock = threading.Lock()

            def work(ref: ObjectRef) -> None:
                local = RunSummary()
                self.process_one(ref, local)
                with lock:
                    summary.outcomes += local.outcomes
                    summary.busy += local.busy
                    summary.errors += local.errors
                if progress:
                    progress(1)

            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dockline-worker") as pool:
                list(pool.map(work, refs))

    def run_once(
        self,
        *,
        workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        max_wait_seconds: float = 30.0,
    ) -> RunSummary:
        """Process everything not settled yet, waiting for files still being written."""
        workers = workers or self.settings.local.concurrency
        total = RunSummary()
        started = time.perf_counter()
        self.deliveries.start()  # in its own threads; also sends what a previous run left
        deadline = time.monotonic() + max_wait_seconds
        while True:
            result = self.scan()
            done = 0

            def tick(n: int, _size: int = len(result.ready)) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(done, _size)

            summary = self.process(result.ready, workers=workers, progress=tick)
            total.outcomes += summary.outcomes
            total.busy += summary.busy
            total.errors += summary.errors
            if not result.unsettled or time.monotonic() > deadline:
                for key in result.unsettled:
                    total.errors.append(f"{key}: still being written; left for the next run")
                break
            time.sleep(self.settings.local.settle_seconds)
        total.seconds = time.perf_counter() - started
        self.deliveries.stop(self.settings.local.stop_grace_seconds)  # what is due now, bounded
        return total

    def watch(
        self,
        *,
        workers: int | None = None,
        stop: threading.Event | None = None,
        on_summary: Callable[[RunSummary], None] | None = None,
    ) -> None:
        """Process files as they arrive until ``stop`` is set (or Ctrl-C)."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        stop = stop or threading.Event()
        dirty = threading.Event()

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("created", "modified", "moved", "closed"):
                    dirty.set()

        observer = Observer()
        observer.schedule(_Handler(), str(self.bucket_dir), recursive=True)
        observer.start()
        self.deliveries.start()
        try:
            dirty.set()
            while not stop.is_set():
                dirty.wait(timeout=self.settings.local.poll_seconds)
                if stop.is_set():
                    break
                dirty.clear()
                result = self.scan()
                if result.ready:
                    summary = self.process(result.ready, workers=workers or self.settings.local.concurrency)
                    if on_summary:
                        on_summary(summary)
                if result.unsettled:
                    # come back when the writer has been quiet for settle_seconds
                    stop.wait(self.settings.local.settle_seconds)
                    dirty.set()
        finally:
            self.deliveries.stop(self.settings.local.stop_grace_seconds)
            observer.stop()
            observer.join(timeout=5)

    def now(self) -> str:
        return iso(self._clock())

    # -- dead letters -------------------------------------------------------------
    def plan_redrive(self, ids: list[str] | None) -> list[RedriveStep]:
        """What a redrive would do for these letters (all when ``ids`` is None).

        Raises UsageError for an unknown id.
        """
        return redrive.plan(list(self.dead_letters.list()), ids, self._locate)

    def _locate(self, letter: DeadLetter) -> tuple[ObjectRef | None, str]:
        # As a scan sees it now: a name that cannot be a key fails its own letter again,
        # never the whole redrive.
        ref = current_ref(self.store, letter.ref.key)
        return (ref, "") if ref is not None else (None, "the object no longer exists")

    def redrive(self, steps: list[RedriveStep]) -> list[tuple[RedriveStep, Outcome | None]]:
        """Carry out a plan; a letter is removed once it is resolved (see ``redrive.execute``)."""
        results: list[tuple[RedriveStep, Outcome | None]] = []
        for done in redrive.execute(steps, self.lifecycle, now=self.now):
            if done.resolved:
                self.dead_letters.remove(done.step.letter.id)
            results.append((done.step, done.outcome))
        return results
