"""DynamoDBLedger: the ledger port on the seed's table (only key: the string ``pk``).

Idempotency without extra calls (see docs/aws.md for the whole design):

- **Document mode** claims lazily. ``write`` is one conditional PutItem
  (``attribute_not_exists(pk)``) that is claim and item at once; when it fails,
  ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` hands back the item in the way, and
  the old item alone says what this is: the same object version again (a
  re-delivery: written, plus whether its notification already went out), the same
  content from another file (duplicate), or other content (conflict, or an overwrite
  when ``on_conflict=overwrite`` and this event is newer by sequencer / event time).
  ``settle`` of a freshly written document costs no call; after the publish,
  ``mark_notified`` puts the version's small file marker with ``notified = true``.
  The outbox flag lives on the marker, not on the document item, because an
  UpdateItem is billed for the whole item (a 300 KB document: ~300 write units to flip
  one flag), while the marker costs ~1. A re-delivery of a written version reads the
  marker (one GetItem, only then) to learn whether its notification went out.
- **Per-record mode** writes records in ``TransactWriteItems`` of up to 100 conditional
  puts (``record_writes="checked"``, the default): the cancellation reasons carry the
  old items, so every record is classified like a document and nothing is silently
  overwritten. ``record_writes="batch"`` uses ``BatchWriteItem`` (25 per call,
  ``UnprocessedItems`` retried with backoff): half the write cost, but unconditional.
  The writes themselves live in ``aws/item_writes.py``; this module holds the file
  lifecycle (claims, settling, the outbox markers, reopen, discard).
- Every other file (failed, duplicate, conflict, every per-record file) gets its **file
  marker** (``dockline#file#<bucket>/<key>@<version>``) from ``settle``, conditionally,
  so a re-delivery finds it and is not notified twice.
- A **re-delivery** of a settled, announced version is learned from the write that settles
  it (the refused document put's marker read, or the refused marker put's old item), at no
  call of its own: ``settle`` returns ``SettledBefore`` and the core reports the file as
  settled earlier, so the handler counts it once (issue 11).
- **Batches** (``dockline.batch``, an SQS batch of small files): the processed documents'
  markers, unconditional puts anyway, share a ``BatchWriteItem`` (``mark_notified_batch``).
  Document puts stay one conditional PutItem each: in a shared TransactWriteItems each
  would cost two write units, and any one refused condition (a duplicate, a redelivery)
  cancels the transaction for every file in it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dockline.aws import items as it
from dockline.aws.item_writes import BATCH_ITEMS, ItemWrites, RecordWrites, WriteVerdict
from dockline.aws.table import ConditionFailed, Table
from dockline.config import PipelineSettings
from dockline.errors import DocklineError, TransientError
from dockline.ledger import LedgerBase, Verdict, Verdicts
from dockline.models import ConflictPolicy, ObjectRef, Outcome, Record, Status
from dockline.pipeline import iso
from dockline.ports import Owed, SettledBefore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["DynamoDBLedger", "RecordWrites"]

_STATE_LIMIT = 1024  # object versions whose in-flight state one container remembers


@dataclass
class _FileState:
    """What this process learned about one object version between begin and mark_notified."""

    received_at: str
    settled_at: str | None = None
    document_fresh: bool = False  # this attempt inserted the document item
    # The document item was there already and says it was notified: only items written
    # before the outbox moved to the file marker carry that flag (see mark_notified).
    notified_on_item: bool = False
    # pks this version wrote, so a file that ends failed can take them back (discard).
    written: list[str] = field(default_factory=list)
    # This attempt recorded the version's final state (put its file marker, or closed its
    # outbox): finding that state again (a retried call, or the core taking a batch's files
    # one by one after a later step failed) is this attempt's own write, not a version
    # settled before, which nobody would count. A new delivery starts afresh (``begin``).
    settled_here: bool = False


class DynamoDBLedger(LedgerBase):
    """The ledger on one DynamoDB table. Thread-safe; one instance per container."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        client_factory: Callable[[], DynamoDBClient] | None = None,
        settings: PipelineSettings | None = None,
        record_writes: RecordWrites = "checked",
        claim_min_bytes: int = 1 << 20,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if record_writes not in ("checked", "batch"):
            raise DocklineError(f"record_writes must be 'checked' or 'batch', not {record_writes!r}")
        self.table_name = table_name
        self.record_writes = record_writes
        self._table = Table(table_name, client=client, client_factory=client_factory, sleep=sleep)
        self._writes = ItemWrites(self._table, record_writes=record_writes)
        self._settings = settings or PipelineSettings()
        self._claim_min_bytes = claim_min_bytes
        self._clock = clock  # only for a marker whose file this process never saw settle
        self._states: OrderedDict[str, _FileState] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def client(self) -> DynamoDBClient:
        return self._table.client

    # -- the port ------------------------------------------------------------------
    def begin(self, ref: ObjectRef, *, now: str) -> Outcome | None:
        """Claim lazily (no call), except for a big per-record file: then read its
        marker first, so a re-delivery does not read and write the whole file again.

        Raises TransientError.
        """
        with self._lock:
            self._remember(ref, _FileState(received_at=now))
        if not self._is_multi(ref) or ref.size is None or ref.size < self._claim_min_bytes:
            return None
        marker = self._table.get(it.marker_pk(ref))
        if marker is None:
            return None
        prior = it.outcome_from_marker(ref, marker)
        return prior if prior.status.is_final else None

    def _store(self, ref: ObjectRef, records: Sequence[Record], policy: ConflictPolicy, now: str) -> Verdicts:
        """Insert conditionally and classify each record (see the module docstring).

        Raises PermanentError for records DynamoDB cannot store, TransientError.
        """
        state = self._state(ref, now)
        verdicts: dict[str, WriteVerdict] = {}
        for record in records:
            if record.index is None:
                put = self._writes.document(ref, record, policy, received_at=state.received_at, now=now)
                if put.verdict[0] is Verdict.WRITTEN:  # a re-delivery's settle asks the marker
                    state.document_fresh, state.notified_on_item = put.inserted, put.notified_on_item
                verdicts[record.pk] = put.verdict
        indexed = [r for r in records if r.index is not None]  # pks are distinct (LedgerBase.write)
        if indexed:
            verdicts.update(self._writes.records(ref, indexed, policy, received_at=state.received_at, now=now))
        state.written.extend(pk for pk, (verdict, _) in verdicts.items() if verdict is Verdict.WRITTEN)
        return [verdicts[r.pk] for r in records]

    def settle(self, outcome: Outcome, *, now: str) -> Owed:
        """Record the final state; True when a notification is still owed, and
        ``SettledBefore`` (the state recorded then) when an earlier delivery settled and
        announced this version: the claim is lazy, so only here does the ledger learn it,
        from the write that settles, at no extra call on a first delivery.

        A processed document is settled by its item already: when this attempt wrote
        it, no call. When the item was there already (a re-delivery), or this process
        did not write it, its file marker says whether the notification went out (one
        GetItem). Anything else gets a file marker through a conditional put; if one is
        there, the version was settled before and only its outbox flag matters.
        Raises TransientError.
        """
        ref = outcome.ref
        if outcome.status is Status.PROCESSED and outcome.pk is not None:
            known = self._state(ref, now)
            known.settled_at = now  # the marker mark_notified writes is stamped with it
            if known.document_fresh:
                return True
            if known.notified_on_item:  # announced before the outbox moved to the marker
                return SettledBefore(replace(outcome, notified=True))
            marker = self._table.get(it.marker_pk(ref)) or {}
            # Only a processed marker counts: a failed one (left by an attempt before a
            # change of code or configuration) was notified as failed, not as processed.
            if it.text(marker, "status") == Status.PROCESSED and it.flag(marker, "notified"):
                return False if known.settled_here else SettledBefore(it.outcome_from_marker(ref, marker))
            return True
        state = self._state(ref, now)
        owed = outcome.status.owes_notification  # a duplicate or superseded version owes none
        marker = it.marker_item(outcome, received_at=state.received_at, now=now, notified=not owed)
        try:
            self._table.call(
                "recording the file's state",
                self._table.client.put_item,
                TableName=self._table.name,
                Item=marker,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as failed:
            old = failed.item or self._table.get(it.marker_pk(ref)) or {}
            if it.flag(old, "notified"):
                return False if state.settled_here else SettledBefore(it.outcome_from_marker(ref, old))
            return True
        state.settled_here = True
        return owed

    def mark_notified(self, outcome: Outcome) -> None:
        """Close the outbox of ``outcome``'s object version, and forget it: the attempt is
        done. Raises TransientError.

        A processed document: one unconditional PutItem of its file marker, notified.
        Not an UpdateItem of the document item: DynamoDB bills an update for the whole
        item, so flipping a flag on a 300 KB document costs ~300 write units; the marker
        costs ~1. Markers are per version, so this can never close the outbox of a newer
        version that replaced the document (overwrite policy), and putting it
        unconditionally is safe: it only ever says what just happened to this version.
        Any other file: set ``notified`` on the marker ``settle`` wrote.
        """
        self._close(outcome)
        with self._lock:
            self._states.pop(outcome.ref.identity, None)

    def _close(self, outcome: Outcome) -> None:
        """``mark_notified`` without forgetting the version: it is remembered as settled by
        this attempt (``settled_here``) until the attempt is done."""
        ref = outcome.ref
        if outcome.status is Status.PROCESSED and outcome.pk is not None:
            marker = self._notified_marker(outcome)
            self._table.call(
                "recording the notification", self._table.client.put_item, TableName=self._table.name, Item=marker
            )
        else:
            # The condition keeps the update from creating a stub marker where there is
            # none (a redrive reopened it meanwhile): then there is nothing to close.
            with contextlib.suppress(ConditionFailed):
                self._table.call(
                    "recording the notification",
                    self._table.client.update_item,
                    TableName=self._table.name,
                    Key={"pk": it.s(it.marker_pk(ref))},
                    UpdateExpression="SET notified = :yes",
                    ConditionExpression="etag = :version",
                    ExpressionAttributeValues={":yes": {"BOOL": True}, ":version": it.s(ref.version)},
                )
        self._settled_here([outcome])

    def mark_notified_batch(self, outcomes: Sequence[Outcome]) -> None:
        """``mark_notified`` for many: the markers of processed documents, which are put
        unconditionally anyway, go 25 a ``BatchWriteItem``; a marker DynamoDB leaves
        unprocessed, and every marker of a batch call that fails, is put on its own
        (``mark_notified``), so one throttled marker costs the others nothing. Other files
        (a conditional update each) are closed one by one. The versions are forgotten only
        when all are closed: if one fails, the core takes each file again on its own, and
        those closed already are still this attempt's work (``settled_here``). Raises
        TransientError."""
        shared: dict[str, tuple[Outcome, it.Item]] = {}
        alone: list[Outcome] = []
        for outcome in outcomes:
            if outcome.status is Status.PROCESSED and outcome.pk is not None:
                shared[it.marker_pk(outcome.ref)] = (outcome, self._notified_marker(outcome))
            else:
                alone.append(outcome)
        if len(shared) == 1:  # one PutItem: what a BatchWriteItem would cost
            alone.extend(outcome for outcome, _ in shared.values())
            shared = {}
        pending = list(shared.values())
        for start in range(0, len(pending), BATCH_ITEMS):
            chunk = pending[start : start + BATCH_ITEMS]
            left = self._put_markers(chunk)
            unput = {outcome.ref.identity for outcome in left}
            self._settled_here([outcome for outcome, _ in chunk if outcome.ref.identity not in unput])
            alone.extend(left)
        for outcome in alone:
            self._close(outcome)
        with self._lock:
            for outcome in outcomes:
                self._states.pop(outcome.ref.identity, None)

    def _put_markers(self, chunk: list[tuple[Outcome, it.Item]]) -> list[Outcome]:
        """Put ``chunk``'s markers in one ``BatchWriteItem`` (unprocessed ones retried once);
        returns the outcomes whose markers are still to be put, each on its own."""
        request: Any = {self._table.name: [{"PutRequest": {"Item": item}} for _, item in chunk]}
        for attempt in range(2):
            try:
                response = self._table.call(
                    "recording notifications", self._table.client.batch_write_item, RequestItems=request
                )
            except TransientError:
                break  # the whole call: what is left goes one by one, each with its own retries
            request = response.get("UnprocessedItems") or {}
            if not request:
                return []
            if attempt == 0:
                self._table.backoff(1)
        left = {it.text(r["PutRequest"]["Item"], "pk") for r in request.get(self._table.name, [])}
        return [outcome for outcome, item in chunk if it.text(item, "pk") in left]

    def _notified_marker(self, outcome: Outcome) -> it.Item:
        """The marker ``mark_notified`` puts for a processed document: notified, stamped
        with the time it settled (if this process saw it settle)."""
        with self._lock:
            state = self._states.get(outcome.ref.identity)
        settled_at = state.settled_at if state is not None else None
        now = settled_at or iso(self._clock())
        received_at = state.received_at if state is not None else now
        return it.marker_item(outcome, received_at=received_at, now=now, notified=True)

    # -- beyond the port -------------------------------------------------------------
    def reopen(self, ref: ObjectRef, *, now: str = "") -> bool:
        """Forget that ``ref`` failed, so a redrive can settle it anew. Only a
        ``failed`` marker is removed; returns whether there was one. Raises TransientError."""
        try:
            self._table.call(
                "reopening a failed file",
                self._table.client.delete_item,
                TableName=self._table.name,
                Key={"pk": it.s(it.marker_pk(ref))},
                ConditionExpression="#s = :failed",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":failed": it.s(Status.FAILED)},
            )
        except ConditionFailed:
            return False
        return True

    def discard(self, ref: ObjectRef) -> None:
        """Delete the items this version wrote, 100 a call, each on the condition that it is
        still this version's (a newer version may have replaced it). Only the pks this
        container saw written are known: a failed file was written by this attempt.
        Raises TransientError."""
        with self._lock:
            state = self._states.get(ref.identity)
        if state is None or not state.written:
            return
        self._writes.delete(ref, list(dict.fromkeys(state.written)))
        state.written.clear()

    def file_state(self, ref: ObjectRef) -> Outcome | None:
        """The settled state of ``ref`` from its marker, if it has one. Raises TransientError."""
        marker = self._table.get(it.marker_pk(ref))
        return it.outcome_from_marker(ref, marker) if marker is not None else None

    # -- plumbing ----------------------------------------------------------------------
    def _is_multi(self, ref: ObjectRef) -> bool:
        return self._settings.table.route_or_fallback(ref.key).multi_for(ref.key)

    def _remember(self, ref: ObjectRef, state: _FileState) -> None:
        self._states[ref.identity] = state
        self._states.move_to_end(ref.identity)
        while len(self._states) > _STATE_LIMIT:
            self._states.popitem(last=False)

    def _settled_here(self, outcomes: Sequence[Outcome]) -> None:
        with self._lock:
            for outcome in outcomes:
                state = self._states.get(outcome.ref.identity)
                if state is not None:
                    state.settled_here = True

    def _state(self, ref: ObjectRef, now: str) -> _FileState:
        with self._lock:
            state = self._states.get(ref.identity)
            if state is None:
                state = _FileState(received_at=now)
                self._remember(ref, state)
            return state
