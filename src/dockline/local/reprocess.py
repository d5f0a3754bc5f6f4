"""Reprocess on the local engine: the candidates from the SQLite file, the object as the
folder has it now, and the run through the engine's own ``process`` (its workers, group
commit and leases). The decisions are ``dockline.reprocess``'s.

While a ``dockline run`` watches the same data dir it sees the reopened versions too and
may take some: leases keep each version to one worker, and a version another process holds
is waited for, so the report still has its outcome.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dockline.errors import UsageError
from dockline.local.db import Database, translate
from dockline.local.engine import LocalEngine, RunSummary
from dockline.local.scan import current_ref
from dockline.models import ObjectRef, Status
from dockline.reprocess import Candidate, Selection, Step, plan

_CANDIDATES = (
    "SELECT bucket, key, version, status, records, size, sequencer, event_time FROM files"
    " WHERE status IN ('processed', 'failed', 'duplicate', 'conflict', 'superseded')"
    " OR (generation > 0 AND status IN ('pending', 'processing')) ORDER BY id"
)
# A data dir no reprocess has touched may lack the generation column when opened read-only
# (a dry run): nothing in it can have been reopened.
_CANDIDATES_OLD = _CANDIDATES.replace(" OR (generation > 0 AND status IN ('pending', 'processing'))", "")


def candidates(db: Database) -> Iterator[Candidate]:
    """Every settled version, and every one a reprocess reopened and did not finish, oldest first."""
    conn = db.connection()
    try:
        try:
            rows = conn.execute(_CANDIDATES)
        except sqlite3.OperationalError as exc:
            if "generation" not in str(exc):
                raise
            rows = conn.execute(_CANDIDATES_OLD)
        for bucket, key, version, status, records, size, sequencer, event_time in rows:
            ref = ObjectRef(str(bucket), str(key), str(version), size, sequencer, event_time)
            yield Candidate(ref, Status(str(status)), int(records or 0))
    except sqlite3.Error as exc:
        raise translate(exc) from exc


def plan_local(engine: LocalEngine, selection: Selection) -> list[Step]:
    """What ``dockline reprocess`` would do; reads the ledger and the bucket, writes nothing."""
    seen: dict[str, ObjectRef | None] = {}

    def locate(ref: ObjectRef) -> ObjectRef | None:
        if ref.key not in seen:  # several versions of one key: hash the object once
            seen[ref.key] = current_ref(engine.store, ref.key)
        return seen[ref.key]

    table = engine.settings.pipeline.table
    known = {route.name for route in table.routes} | {table.fallback.name}
    for name in selection.routes:
        if name not in known:
            raise UsageError(f"--route {name!r}: no such route; routes: {', '.join(r.name for r in table.routes)}")
    return plan(candidates(engine.db), selection, locate, lambda key: table.route_or_fallback(key).name)


@dataclass
class ReprocessReport:
    summary: RunSummary = field(default_factory=RunSummary)
    left: list[str] = field(default_factory=list)  # "key: why", versions not reopened

    @property
    def failed(self) -> int:
        return self.summary.count(Status.FAILED)


def execute(
    engine: LocalEngine,
    steps: list[Step],
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    wait_seconds: float | None = None,
) -> ReprocessReport:
    """Reopen every runnable step's version, then run them all through the lifecycle.

    A version another process holds (a watching ``dockline run`` took it) is tried again
    every half second for up to ``wait_seconds`` (default: the lease time), so it is
    counted once it settled. Raises DocklineError when the ledger cannot be written.
    """
    report = ReprocessReport()
    stop = stop or threading.Event()
    runnable = [step for step in steps if step.ref is not None]
    refs: list[ObjectRef] = []
    with engine.db.group():
        for step in runnable:
            assert step.ref is not None
            if step.candidate.resumed or engine.ledger.reprocess(step.ref, now=engine.now()):
                refs.append(step.ref)
            else:  # it changed state since the plan: reopened, or its notification is owed
                report.left.append(f"{step.ref.key}: not reprocessed: it is not settled right now; try again")
    engine.db.commit_now()
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done = min(done + n, len(refs))
        if progress:
            progress(done, len(refs))

    if progress:
        progress(0, len(refs))
    wait = engine.settings.local.lease_seconds if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    todo = refs
    workers = workers or engine.settings.local.concurrency
    engine.deliveries.start()  # the notifications' webhooks and emails, as a run sends them
    try:
        while todo:
            summary = engine.process(todo, workers=workers, progress=tick, stop=stop)
            report.summary.outcomes += summary.outcomes
            report.summary.seconds += summary.seconds
            report.summary.trouble = summary.trouble
            report.summary.stopped = summary.stopped
            settled = {o.ref.identity for o in summary.outcomes}
            todo = [ref for ref in todo if ref.identity not in settled]
            if not summary.busy or summary.trouble or summary.stopped or time.monotonic() > deadline:
                report.summary.errors = summary.errors
                report.summary.busy = summary.busy
                break
            done -= len(todo)  # counted again when they settle
            stop.wait(0.5)
    finally:
        engine.deliveries.stop(engine.settings.local.stop_grace_seconds)
    return report


def records_done(db: Database, since: str) -> int:
    """Records of the versions reprocessed since ``since`` (ISO): settled ones, and those in
    flight as far as their worker reports them. Reads the files table only, never the items."""
    rows = db.query(
        "SELECT coalesce(sum(records), 0) AS n FROM files WHERE generation > 0 AND status != 'pending'"
        " AND updated_at >= ?",
        (since,),
    )
    return int(rows[0]["n"])
