"""The processing core: one object version in, one settled Outcome out.

    begin (claim) -> read + decode (streaming) -> write records in batches
      -> settle (final state, outbox) -> dead letter (failed) -> notify -> mark notified

Pure orchestration over the ports: no boto3, no sqlite3, no clock of its own. Many small
files take the same steps in batches (``dockline.batch``), one statement per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, BinaryIO

from dockline.config import PipelineSettings
from dockline.decode import RecordStream
from dockline.errors import OutboxPendingError, PermanentError, SupersededError, TransientError
from dockline.models import DeadLetter, Notification, ObjectRef, Outcome, Record, Status, WriteReport
from dockline.ports import DeadLetters, Ledger, Notifier, ObjectStore, SettledBefore
from dockline.retry import RetryPolicy

if TYPE_CHECKING:
    from dockline.routes import Route

SUBJECT_PROCESSED = "S3 Event Processed"
SUBJECT_FAILED = "S3 Event Failed"


def iso(moment: datetime) -> str:
    """UTC timestamp with milliseconds, e.g. 2026-11-27T01:02:03.456Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _batched(items: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while chunk := list(islice(items, size)):
        yield chunk


def notification_for(outcome: Outcome, *, route: str | None = None) -> Notification:
    """The message a settled file gets. Attributes are strings, for subscription filters
    (SNS filter policies, local ``filter = { route = [...], status = [...] }``)."""
    ref = outcome.ref
    attributes = {"status": str(outcome.status), "key": ref.key, "bucket": ref.bucket}
    if route is not None:
        attributes["route"] = route
    if outcome.pk:
        attributes["pk"] = outcome.pk
    if outcome.reprocessed:
        # Same subject and status as a first run, so existing subscription filters still
        # match; a filter on reprocessed=true (or its absence) tells the two apart.
        attributes["reprocessed"] = "true"
    if outcome.status is Status.PROCESSED:
        message = f"{'File reprocessed' if outcome.reprocessed else 'New file processed'}: {ref.key}"
        detailed = outcome.skipped_total or outcome.dropped or outcome.reprocessed
        if outcome.pk is None or outcome.records != 1 or detailed:
            attributes["records"] = str(outcome.records)
            message += f" ({outcome.records} records written"
            if outcome.duplicates:
                message += f", {outcome.duplicates} duplicates"
            if outcome.skipped_total:
                message += f", {outcome.skipped_total} bad records skipped"
            if outcome.dropped:
                attributes["dropped"] = str(outcome.dropped)
                message += f", {outcome.dropped} dropped by the transform"
            message += ")"
        return Notification(SUBJECT_PROCESSED, message, attributes)
    verb = "conflict" if outcome.status is Status.CONFLICT else "failed"
    again = " on reprocess" if outcome.reprocessed else ""
    return Notification(SUBJECT_FAILED, f"File {verb}{again}: {ref.key}: {outcome.error}", attributes)


def outcome_of_error(
    ref: ObjectRef, exc: PermanentError, attempt: int, *, reprocessed: bool = False, notified: bool = False
) -> Outcome:
    """The Outcome of a file its read or decode refused: failed, or superseded when the
    bytes changed under it (a harmless race: the newer version has an event of its own,
    and nobody is paged)."""
    if isinstance(exc, SupersededError):
        newer = f" (now {exc.newer})" if exc.newer and exc.newer not in str(exc) else ""
        return Outcome(
            ref=ref,
            status=Status.SUPERSEDED,
            error=f"{exc}{newer}",
            attempts=attempt,
            reprocessed=reprocessed,
            notified=notified,
        )
    return Outcome(
        ref=ref, status=Status.FAILED, error=str(exc), attempts=attempt, reprocessed=reprocessed, notified=notified
    )


class Pipeline:
    """Runs one object version through the chain. Thread-safe if the ports are."""

    def __init__(
        self,
        *,
        settings: PipelineSettings,
        store: ObjectStore,
        ledger: Ledger,
        notifier: Notifier,
        dead_letters: DeadLetters | None = None,
        clock: Callable[[], datetime],
        retry: RetryPolicy | None = None,
        on_batch: Callable[[ObjectRef, int, int], None] | None = None,
        unit: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        """``on_batch(ref, records, bytes)``: told after each batch reaches the ledger how
        many records this attempt has handed over and how many bytes of the object it has
        read (progress for people; it decides nothing). ``unit()``: a context in which the
        ports' writes are one atomic unit, kept or undone whole (the local engine's database
        transaction); the batch path settles many files in one. None: the ports' writes are
        each on their own (each file's outcome is then still recorded once: see ``batch``)."""
        self.unit = unit or nullcontext
        self.settings = settings
        self.on_batch = on_batch
        self.store = store
        self.ledger = ledger
        self.notifier = notifier
        self.dead_letters = dead_letters
        self._clock = clock
        self.retry = retry or RetryPolicy(
            attempts=settings.retries,
            base_seconds=settings.backoff_base_seconds,
            max_seconds=settings.backoff_max_seconds,
        )

    def now(self) -> str:
        return iso(self._clock())

    def process(self, ref: ObjectRef, *, attempt: int = 1) -> Outcome:
        """Settle ``ref``. Returns its Outcome, also for files that failed on bad input.

        Raises BusyError while another worker holds ``ref``; OutboxPendingError when the
        state is settled but its notification could not go out yet; TransientError when
        the retry budget ran out before anything settled (see ``lifecycle`` for what an
        engine does with each).
        """
        prior = self.retry.call(lambda: self.ledger.begin(ref, now=self.now()))
        return self.resume(ref, prior, attempt=attempt)

    def resume(self, ref: ObjectRef, prior: Outcome | None, *, attempt: int = 1) -> Outcome:
        """``process`` after ``begin`` claimed ``ref`` and returned ``prior`` (the batch path,
        ``dockline.batch``, claims many at once and hands some back here). Raises as ``process``."""
        if prior is not None:  # a re-delivery of a settled version: finish its outbox only
            if not prior.notified and prior.status.owes_notification:
                self._outbox(prior)  # the crash may have come before the dead letter too
                return replace(prior, notified=True)  # its announcement is this attempt's work
            return replace(prior, earlier=True)  # all done before: nothing of it is this attempt's
        wrote: list[bool] = []  # set once this attempt hands records to the ledger
        again = self.ledger.reprocessing(ref)
        try:
            outcome = self.retry.call(lambda: self._ingest(ref, attempt, wrote))
        except PermanentError as exc:
            self._discard(ref, wrote)  # a failed (or superseded) file leaves no items
            outcome = outcome_of_error(ref, exc, attempt, reprocessed=again)
        else:
            if again:
                outcome = replace(outcome, reprocessed=True)
        return self._finish(outcome)

    def _discard(self, ref: ObjectRef, wrote: list[bool]) -> None:
        """Take back what ``ref`` wrote, when this attempt wrote anything. Most bad files fail
        before their first batch reaches the ledger, and skip the cost; a retry of a file a
        crash cut short writes its first batches again before it can fail later, so those
        are found too."""
        if wrote:
            self.retry.call(lambda: self.ledger.discard(ref))

    def give_up(self, ref: ObjectRef, reason: str, *, attempts: int) -> Outcome:
        """Settle ``ref`` as failed after its retries ran out (the lifecycle's decision);
        the items it wrote before are taken back first."""
        self.retry.call(lambda: self.ledger.discard(ref))
        error = f"gave up after {attempts} attempts: {reason}"
        again = self.ledger.reprocessing(ref)
        return self._finish(Outcome(ref=ref, status=Status.FAILED, error=error, attempts=attempts, reprocessed=again))

    def _finish(self, outcome: Outcome) -> Outcome:
        owed = self.retry.call(lambda: self.ledger.settle(outcome, now=self.now()))
        if isinstance(owed, SettledBefore):  # a lazy claim's re-delivery: nothing of it is this attempt's
            return replace(owed.prior, notified=True, earlier=True)
        if outcome.status in (Status.PROCESSED, Status.DUPLICATE) and self.dead_letters is not None:
            # The key is fine now: letters of its earlier versions (a half-written copy, a
            # broken upload since fixed) would only send someone after a solved problem.
            self.retry.call(lambda: self.dead_letters.resolve(outcome.ref))  # type: ignore[union-attr]
            if outcome.reprocessed:  # this very version may have failed before, with a letter
                self.retry.call(lambda: self.dead_letters.remove(outcome.ref.identity))  # type: ignore[union-attr]
        if not owed:
            return replace(outcome, notified=True)
        self._outbox(outcome)
        return replace(outcome, notified=True)

    def _outbox(self, outcome: Outcome) -> None:
        """Dead-letter (failed files) and notify a settled state, then close its outbox.
        Raises OutboxPendingError: the state stands, only the message is owed."""
        try:
            if outcome.status is Status.FAILED and self.dead_letters is not None:
                self._dead_letter(outcome)
            route = self.settings.table.route_or_fallback(outcome.ref.key).name  # the key decides, as it did
            notification = notification_for(outcome, route=route)
            self.retry.call(lambda: self.notifier.publish(notification))
            self.retry.call(lambda: self.ledger.mark_notified(outcome))
        except TransientError as exc:
            raise OutboxPendingError(f"{outcome.status}, but its notification is not sent yet: {exc}") from exc

    def _dead_letter(self, outcome: Outcome) -> None:
        assert self.dead_letters is not None
        letter = DeadLetter(
            id=outcome.ref.identity,
            ref=outcome.ref,
            reason=outcome.error or "failed",
            attempts=outcome.attempts,
            failed_at=self.now(),
        )
        self.retry.call(lambda: self.dead_letters.send(letter))  # type: ignore[union-attr]

    def stream(self, ref: ObjectRef, body: BinaryIO, *, now: str, route: Route | None = None) -> RecordStream:
        """The records of ``ref``'s ``body``, checked against the version's content hash
        (``route``: when the caller looked it up already; else the key's)."""
        return RecordStream(
            body,
            key=ref.key,
            settings=self.settings,
            expected_sha256=self.store.content_sha256(ref),
            ref=ref,
            received_at=ref.event_time or now,  # for a transform's ctx
            route=route,
        )

    def _ingest(self, ref: ObjectRef, attempt: int, wrote: list[bool]) -> Outcome:
        tally = _Tally()  # counts, not lists: a file may hold millions of records
        with self.store.open(ref) as body:
            stream = self.stream(ref, body, now=self.now())
            done = 0
            for chunk in _batched(stream.records(), self.settings.batch_size):
                wrote[:] = [True]  # before the call: a write may fail after storing part of it
                tally.add(self.ledger.write(ref, chunk, policy=stream.route.on_conflict, now=self.now()))
                if self.on_batch is not None:
                    done += len(chunk)
                    self.on_batch(ref, done, stream.size)

        return self._classify(ref, stream, tally, attempt)

    def _classify(
        self, ref: ObjectRef, stream: RecordStream, tally: _Tally, attempt: int, *, notified: bool = False
    ) -> Outcome:
        pk = None
        if not stream.multi and tally.written + tally.duplicates + tally.conflicts == 1:
            pk = tally.first_written or tally.first_duplicate or (tally.first_conflict or ("", ""))[0]
        common = {
            "ref": ref,
            "pk": pk,
            "records": tally.written,
            "duplicates": tally.duplicates,
            "conflicts": tally.conflicts,
            "skipped": tuple(stream.skipped),
            "skipped_total": stream.skipped_total,
            "dropped": stream.dropped,
            "sha256": stream.sha256,
            "attempts": attempt,
            "notified": notified,
        }
        if tally.first_conflict is not None:
            first_pk, origin = tally.first_conflict
            more = f" (and {tally.conflicts - 1} more)" if tally.conflicts > 1 else ""
            error = (
                f"id {first_pk!r} is already in the ledger with different content (from {origin}); "
                f"the first version was kept{more}"
            )
            return Outcome(status=Status.CONFLICT, error=error, **common)  # type: ignore[arg-type]
        if tally.duplicates and not tally.written:
            error = f"id {tally.first_duplicate!r} is already in the ledger with identical content"
            if tally.duplicates > 1:
                error = f"all {tally.duplicates} records are already in the ledger with identical content"
            return Outcome(status=Status.DUPLICATE, error=error, **common)  # type: ignore[arg-type]
        return Outcome(status=Status.PROCESSED, **common)  # type: ignore[arg-type]


class _Tally:
    """What the ledger did with a file's records, in constant memory."""

    def __init__(self) -> None:
        self.written = self.duplicates = self.conflicts = 0
        self.first_written: str | None = None
        self.first_duplicate: str | None = None
        self.first_conflict: tuple[str, str] | None = None

    def add(self, report: WriteReport) -> None:
        if report.written:
            self.written += len(report.written)
            self.first_written = self.first_written or report.written[0]
        if report.duplicates:
            self.duplicates += len(report.duplicates)
            self.first_duplicate = self.first_duplicate or report.duplicates[0]
        if report.conflicts:
            self.conflicts += len(report.conflicts)
            self.first_conflict = self.first_conflict or report.conflicts[0]
