"""The batch path: many small object versions through the pipeline at once.

    begin_batch (one claim) -> read + decode each file on its own
      -> in one unit: write_batch, settle_batch, dead letters, publish_batch, mark_notified_batch

Each file keeps its own outcome, failure isolation and notification; only the bookkeeping
is shared: one statement (or one ``executemany``) per step for the whole batch instead of
one transaction, one retry wrapper and one timestamp per file and step. The ports' base
classes do each batch step file by file, so every backend works; SQLite and the local topic
do each in one statement. Where the engine gives the pipeline an atomic ``unit`` (the local
database transaction), the steps after the reads are kept or undone whole.

What the batch does not finish it hands back, claimed, to the per-file path
(``Pipeline.resume``): a version settled before (its outbox), one a reprocess reopened, and
every file of a batch whose shared steps failed on a passing error or a record the backend
refused (rolled back where the unit is atomic; else the per-file path's writes are
idempotent, and at worst a notification goes out twice, as a re-delivery's can). When the
storage itself refuses (disk full), nothing of the batch stands and each file says so. A
file whose read keeps failing gets the per-file path's retry budget, then the lifecycle
gives up on it alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from dockline.decode import RecordStream
from dockline.errors import BusyError, DocklineError, PermanentError, TransientError
from dockline.models import ConflictPolicy, DeadLetter, ObjectRef, Outcome, Record, Status
from dockline.pipeline import Pipeline, _Tally, notification_for, outcome_of_error
from dockline.ports import SettledBefore, Unclaimed
from dockline.routes import Route

log = logging.getLogger("dockline.batch")


@dataclass(frozen=True, slots=True)
class Resume:
    """Claimed by the batch, to be finished by ``Pipeline.resume(ref, prior)``."""

    prior: Outcome | None = None


BatchStep = Outcome | Resume | Unclaimed | Exception


@dataclass(slots=True)
class _Read:
    index: int
    stream: RecordStream
    records: list[Record]


def process_batch(pipeline: Pipeline, refs: Sequence[ObjectRef], attempts: Sequence[int]) -> list[BatchStep]:
    """A step per ref, in order: its settled Outcome (notified), ``Resume`` (claimed; finish
    it with ``Pipeline.resume``), ``Unclaimed`` (run it on its own), or the error to treat
    it by (BusyError, a bug in its read, the storage refusing the batch).

    Raises what ``begin_batch`` raised when the claim failed: then no ref is claimed.
    """
    now = pipeline.now()  # two timestamps a batch: its claim (and reads), and its settling
    ledger = pipeline.ledger
    claims = pipeline.retry.call(lambda: ledger.begin_batch(refs, now=now))
    steps: list[BatchStep] = [Resume()] * len(refs)
    settled: dict[int, Outcome] = {}  # decided without items: failed or superseded on reading
    table = pipeline.settings.table
    routes: dict[int, Route] = {}
    read: list[_Read] = []
    for index, (ref, claim) in enumerate(zip(refs, claims, strict=True)):
        if isinstance(claim, (BusyError, Unclaimed)):
            steps[index] = claim  # held elsewhere; or left to the per-file path whole
        elif claim is not None or ledger.reprocessing(ref):
            steps[index] = Resume(claim)  # its outbox, or a reprocess's run: the per-file path
        else:
            # The key decides the route, once per file: for the decode and the notification.
            route = routes[index] = table.route_or_fallback(ref.key)
            try:
                # The retry budget of the per-file path's read; when it runs out, the
                # lifecycle gives up on this file as on any other.
                stream, records = pipeline.retry.call(lambda ref=ref, route=route: _decode(pipeline, ref, route, now))  # type: ignore[misc]
            except PermanentError as exc:  # a bad file fails alone
                settled[index] = outcome_of_error(ref, exc, attempts[index], notified=True)
            except Exception as exc:  # noqa: BLE001 -- out of retries, or a bug: that file only (the lifecycle says which)
                steps[index] = exc
            else:
                read.append(_Read(index, stream, records))
    # Each file's duration (claimed -> settled, the metrics' histogram) is its batch's: the
    # time it really waited; one timestamp for all would make them all zero.
    now = pipeline.now()
    try:
        with pipeline.unit():
            outcomes = _write(pipeline, refs, attempts, read, now)
            outcomes.update(settled)
            order = sorted(outcomes)
            final = _settle(pipeline, [outcomes[i] for i in order], [routes[i].name for i in order], now)
            outcomes.update(zip(order, final, strict=True))
    except DocklineError as exc:
        if isinstance(exc, (TransientError, PermanentError)):
            return steps  # each such file again on its own (Resume): it decides per file
        for index in (*settled, *(r.index for r in read)):
            steps[index] = exc  # the storage refused: nothing of the batch stands
        return steps
    except Exception:
        log.exception("internal error in a batch of %d files; each goes on its own", len(refs))
        return steps
    for index, outcome in outcomes.items():
        steps[index] = outcome
    return steps


def _decode(pipeline: Pipeline, ref: ObjectRef, route: Route, now: str) -> tuple[RecordStream, list[Record]]:
    """Read and decode all of a small file (``Pipeline._ingest`` without the writes)."""
    with pipeline.store.open(ref) as body:
        stream = pipeline.stream(ref, body, now=now, route=route)
        return stream, list(stream.records())


def _write(
    pipeline: Pipeline, refs: Sequence[ObjectRef], attempts: Sequence[int], read: list[_Read], now: str
) -> dict[int, Outcome]:
    """Every read file's items in one ``write_batch``; each file's Outcome from its report."""
    if not read:
        return {}
    batch: list[tuple[ObjectRef, Sequence[Record], ConflictPolicy]] = [
        (refs[r.index], r.records, r.stream.route.on_conflict) for r in read
    ]
    reports = pipeline.retry.call(lambda: pipeline.ledger.write_batch(batch, now=now))
    outcomes: dict[int, Outcome] = {}
    for r, report in zip(read, reports, strict=True):
        tally = _Tally()
        tally.add(report)
        outcomes[r.index] = pipeline._classify(refs[r.index], r.stream, tally, attempts[r.index], notified=True)
    return outcomes


def _settle(pipeline: Pipeline, outcomes: list[Outcome], routes: list[str], now: str) -> list[Outcome]:
    """``Pipeline._finish`` for many: settle, clear old letters, dead-letter, notify, close the
    outbox. ``routes``: each file's route name, for its notification. Returns the outcomes as
    settled: a version the ledger found settled and announced before (``SettledBefore``) as
    its earlier state, never counted again as this batch's work."""
    ledger, retry, letters = pipeline.ledger, pipeline.retry, pipeline.dead_letters
    owed = retry.call(lambda: ledger.settle_batch(outcomes, now=now))
    final = [
        replace(w.prior, notified=True, earlier=True) if isinstance(w, SettledBefore) else o
        for o, w in zip(outcomes, owed, strict=True)
    ]
    if letters is not None:
        fine = [o.ref for o in final if o.status in (Status.PROCESSED, Status.DUPLICATE) and not o.earlier]
        if fine:
            retry.call(lambda: letters.resolve_batch(fine))
    due = [(o, route) for o, route, w in zip(outcomes, routes, owed, strict=True) if w]
    if not due:
        return final
    if letters is not None:
        for o, _ in due:
            if o.status is Status.FAILED:
                letter = DeadLetter(o.ref.identity, o.ref, o.error or "failed", o.attempts, now)
                retry.call(lambda letter=letter: letters.send(letter))  # type: ignore[misc]
    notifications = [notification_for(o, route=route) for o, route in due]
    retry.call(lambda: pipeline.notifier.publish_batch(notifications))
    retry.call(lambda: ledger.mark_notified_batch([o for o, _ in due]))
    return final
