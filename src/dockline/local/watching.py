"""Watch mode: process files as they arrive, until stopped.

inotify (``local/inotify.py``) wakes the loop; with nothing arriving it sleeps. A full
rescan is the safety net, rare and adaptive (``_next_interval``), and the ledger is asked
every ``poll_seconds`` whether another process reopened or left versions (``LedgerWatch``).
The engine (``local/engine.py``) scans and processes; this module decides when.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dockline.local.inotify import BucketWatch, watch_bucket
from dockline.local.lock import DatabaseUnavailable
from dockline.local.scan import LedgerWatch, ScanResult

if TYPE_CHECKING:
    from dockline.local.engine import LocalEngine, RunSummary

log = logging.getLogger("dockline.local")


def watch_bucket_loop(
    engine: LocalEngine,
    *,
    workers: int | None = None,
    stop: threading.Event | None = None,
    on_summary: Callable[[RunSummary], None] | None = None,
    on_trouble: Callable[[str], None] | None = None,
    watch: BucketWatch | None = None,
) -> None:
    """Process files as they arrive until ``stop`` is set (``watch``: of the bucket
    folder, not started yet; by default a new one).

    inotify wakes it (``local/inotify.py``); with nothing arriving it sleeps. A full
    rescan is the safety net: ``poll_seconds`` after start, then backing off (x4 each
    time, up to RESCAN_MAX_SECONDS) while rescans find nothing inotify missed; at once when
    inotify says it lost events (queue overflow, a folder it cannot watch), and every
    ``poll_seconds`` while a folder is unwatched or a file is left to retry. Every
    ``poll_seconds`` it also asks the ledger (``LedgerWatch``, no query when nothing
    committed) whether another process reopened or left versions: it then scans.
    A full or failing disk, or a lock held too long, never ends it: it says so once
    per attempt (``on_trouble``), backs off (1 s doubling to 30 s) and tries again.
    """
    stop = stop or threading.Event()
    report = on_trouble or log.warning
    watch = watch or watch_bucket(engine.bucket_dir)
    watch.start()
    changed = watch.changed
    # Wake the loop when stop is set: it may be asleep for minutes.
    threading.Thread(target=_set_when, args=(stop, changed), name="dockline-stop", daemon=True).start()
    engine.deliveries.start()
    shortest = engine.settings.local.poll_seconds
    interval = shortest
    next_rescan = next_look = time.monotonic() + interval
    ledger = LedgerWatch(engine.db)
    backoff = 1.0
    try:
        changed.set()  # the first scan: what arrived while nobody watched
        while not stop.is_set():
            woke = changed.wait(timeout=max(0.0, min(next_rescan, next_look) - time.monotonic()))
            if stop.is_set():
                break
            asked = False
            if not woke and time.monotonic() < next_rescan:
                next_look = time.monotonic() + shortest
                if not ledger.wants_scan():
                    continue
                woke = asked = True  # another process reopened or left versions: not a rescan
            next_look = time.monotonic() + shortest
            changed.clear()  # before the scan: an event during it wakes the next one
            lost = _take_lost(watch, timer=not woke)
            result, trouble, retry = _watch_round(engine, workers, stop, on_summary)
            if trouble is not None:
                report(f"{trouble}; trying again in {backoff:g}s")
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                changed.set()
                continue
            backoff = 1.0
            if asked and not result.ready:
                ledger.quiet()
            interval = _next_interval(
                interval,
                shortest,
                timer=not woke,
                found=bool(result.ready),
                distrust=lost is not None or watch.blind or retry,
            )
            next_rescan = time.monotonic() + interval
            if result.unsettled:
                # come back when the writer has been quiet for settle_seconds
                stop.wait(engine.settings.local.settle_seconds)
                changed.set()
    finally:
        engine.deliveries.stop(engine.settings.local.stop_grace_seconds)
        watch.stop()


def _watch_round(
    engine: LocalEngine, workers: int | None, stop: threading.Event, on_summary: Callable[[RunSummary], None] | None
) -> tuple[ScanResult, str | None, bool]:
    """One scan and what it found processed: (the scan, trouble, files left to retry)."""
    try:
        result = engine.scan()
    except DatabaseUnavailable as exc:
        return ScanResult(ready=[], unsettled=[]), str(exc), False
    if not result.ready:
        return result, None, False
    summary = engine.process(result.ready, workers=workers or engine.settings.local.concurrency, stop=stop)
    if on_summary:
        on_summary(summary)
    return result, summary.trouble, bool(summary.errors or summary.busy)


def _take_lost(watch: BucketWatch, *, timer: bool) -> str | None:
    """Why inotify lost events (said in one line; every folder is watched again), or None."""
    lost = watch.take_lost()
    if lost is not None:
        log.warning("%s; rescanning the whole bucket now", lost)
        watch.resync()
    elif watch.blind and timer:
        watch.resync()  # a watch slot may be free again
    return lost


def _set_when(event: threading.Event, then: threading.Event) -> None:
    event.wait()
    then.set()


RESCAN_MAX_SECONDS = 300.0  # the safety net's longest sleep while inotify misses nothing


def _next_interval(interval: float, shortest: float, *, timer: bool, found: bool, distrust: bool) -> float:
    """Seconds until the next full rescan. It backs off only after a rescan on the timer
    found nothing inotify had not already reported; it starts over at ``shortest`` when one
    did find something, and stays there while events cannot be trusted."""
    if distrust or (timer and found):
        return shortest
    if timer:  # x4: 2 s, 8 s, 32 s, 2 min, 5 min (a rescan of 50,000 files costs ~0.3 s of CPU)
        return min(max(interval, shortest) * 4, max(RESCAN_MAX_SECONDS, shortest))
    return interval
