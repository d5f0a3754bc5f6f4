"""Progress of the files a process is working on, for people watching it.

The pipeline reports each batch it hands to the ledger (``Pipeline.on_batch``); the engine
feeds those reports into a ``Board``: files running now (records and bytes so far, since
when), and the totals of a ``run --once`` (files, bytes and records done of those planned).
The CLI reads the board: a progress bar for ``run --once``, a line every few seconds for a
long file in watch mode, and a summary line when a file settles. The board decides
nothing and writes nothing: other processes see progress through the ``files`` row
(``records_done``, ``bytes_done``, ``started_at``), which the engine persists.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dockline.models import ObjectRef, Outcome


@dataclass(frozen=True, slots=True)
class Running:
    """A file in flight in this process."""

    ref: ObjectRef
    started: float  # monotonic
    records: int = 0
    bytes_done: int = 0


@dataclass(frozen=True, slots=True)
class Totals:
    """What a run planned and has done: the files settled or left, and the bytes and records
    of those plus the ones in flight."""

    files_done: int = 0
    files_planned: int = 0
    bytes_done: int = 0
    bytes_planned: int = 0
    records: int = 0


class _Flying:
    """A file in flight, updated in place (a frozen copy per batch would cost more than the batch's bookkeeping)."""

    __slots__ = ("bytes_done", "records", "ref", "started")

    def __init__(self, ref: ObjectRef, started: float) -> None:
        self.ref, self.started, self.records, self.bytes_done = ref, started, 0, 0


class Board:
    """Thread-safe. ``clock``: monotonic seconds (injected for tests). Cheap on the hot path:
    a few attribute updates per file and per batch, no allocation but the start's."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[ObjectRef, _Flying] = {}
        self._files_done = self._files_planned = 0
        self._bytes_done = self._bytes_planned = self._records = 0
        self._listeners: list[Callable[[Outcome, float], None]] = []

    def plan(self, refs: list[ObjectRef]) -> None:
        """More files to do (a scan found them): the bar's totals grow."""
        size = sum(ref.size or 0 for ref in refs)
        with self._lock:
            self._files_planned += len(refs)
            self._bytes_planned += size

    def start(self, ref: ObjectRef) -> None:
        flying = _Flying(ref, self._clock())
        with self._lock:
            self._running[ref] = flying

    def batch(self, ref: ObjectRef, records: int, bytes_done: int) -> None:
        flying = self._running.get(ref)  # a dict read is atomic; the numbers are only shown
        if flying is not None:
            flying.records, flying.bytes_done = records, bytes_done

    def finish(self, ref: ObjectRef) -> float:
        """The file left this process's hands (settled, busy or left for later). Its planned
        bytes count as done. Returns the seconds it took."""
        now = self._clock()
        with self._lock:
            flying = self._running.pop(ref, None)
            self._files_done += 1
            if flying is None:
                self._bytes_done += ref.size or 0
                return 0.0
            self._bytes_done += ref.size or flying.bytes_done
            self._records += flying.records
        return now - flying.started

    def start_batch(self) -> float:
        """A batch of small files starts (``dockline.batch``): they are not tracked one by
        one, they settle together in milliseconds. Returns the start, for ``finish_batch``."""
        return self._clock()

    def finish_batch(self, refs: list[ObjectRef], records: int, started: float) -> float:
        """The batch's files left this process's hands: one update for all of them (a per-file
        call would cost more than the progress is worth, issue 10's 2 % bound). Returns the
        seconds the batch took."""
        size = sum(ref.size or 0 for ref in refs)
        with self._lock:
            self._files_done += len(refs)
            self._bytes_done += size
            self._records += records
        return self._clock() - started

    def running(self) -> list[tuple[Running, float]]:
        """Files in flight, each with the seconds it has run, the longest running first."""
        now = self._clock()
        with self._lock:
            found = [Running(f.ref, f.started, f.records, f.bytes_done) for f in self._running.values()]
        return sorted(((r, now - r.started) for r in found), key=lambda pair: -pair[1])

    def totals(self) -> Totals:
        with self._lock:
            flying = list(self._running.values())
            return Totals(
                files_done=self._files_done,
                files_planned=self._files_planned,
                bytes_done=self._bytes_done + sum(f.bytes_done for f in flying),
                bytes_planned=self._bytes_planned,
                records=self._records + sum(f.records for f in flying),
            )

    # -- settled files, once durable ---------------------------------------------------
    def subscribe(self, listener: Callable[[Outcome, float], None]) -> None:
        """``listener(outcome, seconds)`` for each file this process settles, once its
        state is durable (called on the committing thread: keep it short)."""
        with self._lock:
            self._listeners.append(listener)

    @property
    def listened(self) -> bool:
        return bool(self._listeners)

    def settled(self, outcome: Outcome, seconds: float) -> None:
        for listener in list(self._listeners):
            listener(outcome, seconds)


# -- lines for people -----------------------------------------------------------------
def size_text(n: float) -> str:
    """Bytes as people read them: 512 B, 1.5 KB, 70.2 MB (powers of 1000, like rich's bar)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover - the loop returns at GB


def _per_second(amount: float, seconds: float) -> float:
    return amount / seconds if seconds > 0 else 0.0


def running_line(running: Running, seconds: float) -> str:
    """``still processing incoming/big.jsonl: 1,200,000 records, 42.0 MB of 70.0 MB (60%) in
    12s, 100,000 records/s``."""
    done = f"{size_text(running.bytes_done)}"
    size = running.ref.size
    if size:
        done += f" of {size_text(size)} ({min(100, 100 * running.bytes_done // size)}%)"
    rate = _per_second(running.records, seconds)
    return (
        f"still processing {running.ref.key}: {running.records:,} records, {done} in {seconds:.0f}s,"
        f" {rate:,.0f} records/s"
    )


def settled_line(outcome: Outcome, seconds: float) -> str:
    """``settled incoming/big.jsonl: processed, 2,000,000 records in 15.2s (131,578 records/s)``."""
    rate = _per_second(outcome.records, seconds)
    return (
        f"settled {outcome.ref.key}: {outcome.status}, {outcome.records:,} records in {seconds:.1f}s"
        f" ({rate:,.0f} records/s)"
    )


class Reporter:
    """Watch mode: every ``interval`` seconds, a line for each file running longer than
    ``interval``. Runs in its own daemon thread until ``stop`` is set."""

    def __init__(self, board: Board, say: Callable[[str], None], *, interval: float, stop: threading.Event) -> None:
        self.board = board
        self.say = say
        self.interval = interval
        self.stop = stop
        self._thread = threading.Thread(target=self._loop, name="dockline-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def tick(self) -> int:
        """Print the lines due now; returns how many."""
        lines = 0
        for running, seconds in self.board.running():
            if seconds >= self.interval:
                self.say(running_line(running, seconds))
                lines += 1
        return lines

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            self.tick()
