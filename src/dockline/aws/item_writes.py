"""Writing items: a file's documents and records into the ledger's table, each refused
write judged by the shared rule (``ledger.judge``), and the conditional deletes that take a
failed version's items back. ``aws/ledger.py`` holds the file lifecycle (claims, settling,
the outbox markers) and calls these; ``aws/table.py`` makes the calls.

- A **document** is one conditional PutItem (``attribute_not_exists(pk)``), claim and item
  at once; when it is refused, ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` hands back
  the item in the way, which alone says what this is (see ``aws/ledger.py``).
- **Records** (per-record mode) go in ``TransactWriteItems`` of up to 100 conditional puts
  (``record_writes="checked"``): the cancellation reasons carry the old items, so every
  record is judged like a document. ``record_writes="batch"`` uses ``BatchWriteItem`` (25
  a call, ``UnprocessedItems`` retried with backoff): half the write cost, unconditional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dockline.aws import items as it
from dockline.aws.table import MAX_ROUNDS, Cancelled, ConditionFailed, Table
from dockline.errors import PermanentError, TransientError
from dockline.ledger import Existing, Verdict, judge
from dockline.models import ConflictPolicy, ObjectRef, Record

RecordWrites = Literal["checked", "batch"]

TRANSACTION_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
TRANSACTION_BYTES = 3_800_000  # under the 4 MB aggregate limit, by the upper-bound estimate
BATCH_ITEMS = 25  # DynamoDB's limit per BatchWriteItem

# A verdict on one record (never REPLACE), with the first version's key for a conflict.
WriteVerdict = tuple[Verdict, str]


@dataclass(frozen=True, slots=True)
class DocumentPut:
    """What putting one document did. For a WRITTEN verdict: whether this put inserted the
    item (False: this version's item was there already, a re-delivery) and whether that item
    says it was notified (items written before the outbox moved to the file marker)."""

    verdict: WriteVerdict
    inserted: bool = False
    notified_on_item: bool = False


@dataclass
class _Put:
    record: Record
    item: it.Item
    # None: the pk must be new; else (bucket, key, etag, content_hash) of the item to replace
    replaces: tuple[str, str, str, str] | None = None


class ItemWrites:
    """The item writes on one table. Thread-safe (no state of its own)."""

    def __init__(self, table: Table, *, record_writes: RecordWrites) -> None:
        self._table = table
        self.record_writes = record_writes

    def records(
        self, ref: ObjectRef, records: list[Record], policy: ConflictPolicy, *, received_at: str, now: str
    ) -> dict[str, WriteVerdict]:
        """Write per-record ``records`` (distinct pks) the configured way; a verdict per pk.

        Raises PermanentError for records DynamoDB cannot store, TransientError.
        """
        if self.record_writes == "batch":
            return self._batch_write(ref, records, received_at, now)
        return self._transact_write(ref, records, policy, received_at, now)

    def delete(self, ref: ObjectRef, pks: list[str]) -> None:
        """Delete ``pks``, 100 a call, each on the condition that it is still ``ref``'s (a
        newer version may have replaced it). Raises TransientError."""
        for start in range(0, len(pks), TRANSACTION_ITEMS):
            self._delete_chunk(ref, pks[start : start + TRANSACTION_ITEMS])

    # -- documents -------------------------------------------------------------------
    def document(
        self, ref: ObjectRef, record: Record, policy: ConflictPolicy, *, received_at: str, now: str
    ) -> DocumentPut:
        """Put one document conditionally and judge the item in its way, if any.

        Raises PermanentError for a document DynamoDB cannot store, TransientError.
        """
        put = _Put(record, it.record_item(ref, record, received_at=received_at, now=now))
        for _ in range(MAX_ROUNDS):
            try:
                self._table.call("writing the item", self._table.client.put_item, **self._put_args(put))
            except ConditionFailed as failed:
                old = failed.item or self._table.get(record.pk)
                if old is None:
                    put.replaces = None  # deleted in between: insert
                    continue
                verdict = self._judge(ref, put, old, policy)
                if verdict is None:
                    continue  # replace the old item, conditionally
                if verdict[0] is Verdict.WRITTEN:  # a re-delivery: settle asks the marker
                    return DocumentPut(verdict, inserted=False, notified_on_item=it.flag(old, "notified"))
                return DocumentPut(verdict)
            else:
                return DocumentPut((Verdict.WRITTEN, ""), inserted=True)
        raise TransientError(f"the item {record.pk!r} kept changing while it was written; try again")

    def _judge(self, ref: ObjectRef, put: _Put, old: Mapping[str, Any], policy: ConflictPolicy) -> WriteVerdict | None:
        """Classify ``put`` against the item in its way (``ledger.judge``); None means:
        replace it, conditionally on it being unchanged (``put.replaces`` is set)."""
        existing = Existing(
            bucket=it.text(old, "bucket") or "",
            key=it.text(old, "key") or "?",
            version=it.text(old, "etag") or "",
            content_hash=it.text(old, "content_hash") or "",
            sequencer=it.text(old, "sequencer"),
            event_time=it.text(old, "event_time"),
        )
        verdict, origin = judge(ref, put.record, existing, policy)
        if verdict is not Verdict.REPLACE:
            return verdict, origin
        put.replaces = (existing.bucket, existing.key, existing.version, existing.content_hash)
        return None

    def _put_args(self, put: _Put) -> dict[str, Any]:
        args: dict[str, Any] = {
            "TableName": self._table.name,
            "Item": put.item,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if put.replaces is None:
            args["ConditionExpression"] = "attribute_not_exists(pk)"
            return args
        bucket, key, etag, content_hash = put.replaces
        args["ConditionExpression"] = "#b = :ob AND #k = :ok AND #e = :oe AND content_hash = :oh"
        args["ExpressionAttributeNames"] = {"#b": "bucket", "#k": "key", "#e": "etag"}
        args["ExpressionAttributeValues"] = {
            ":ob": it.s(bucket),
            ":ok": it.s(key),
            ":oe": it.s(etag),
            ":oh": it.s(content_hash),
        }
        return args

    # -- records: checked (TransactWriteItems) ----------------------------------------
    def _transact_write(
        self, ref: ObjectRef, records: list[Record], policy: ConflictPolicy, received_at: str, now: str
    ) -> dict[str, WriteVerdict]:
        verdicts: dict[str, WriteVerdict] = {}
        chunk: list[_Put] = []
        size = 0
        for record in records:
            put = _Put(record, it.record_item(ref, record, received_at=received_at, now=now))
            put_size = it.item_size(put.item)
            if chunk and (len(chunk) == TRANSACTION_ITEMS or size + put_size > TRANSACTION_BYTES):
                verdicts.update(self._transact_chunk(ref, chunk, policy))
                chunk, size = [], 0
            chunk.append(put)
            size += put_size
        if chunk:
            verdicts.update(self._transact_chunk(ref, chunk, policy))
        return verdicts

    def _transact_chunk(self, ref: ObjectRef, pending: list[_Put], policy: ConflictPolicy) -> dict[str, WriteVerdict]:
        verdicts: dict[str, WriteVerdict] = {}
        for round_ in range(MAX_ROUNDS):
            if not pending:
                return verdicts
            actions = [{"Put": self._put_args(p)} for p in pending]
            try:
                self._table.call("writing records", self._table.client.transact_write_items, TransactItems=actions)
            except Cancelled as cancelled:
                pending = self._after_cancel(ref, pending, cancelled.reasons, policy, verdicts, round_)
            else:
                verdicts.update({p.record.pk: (Verdict.WRITTEN, "") for p in pending})
                return verdicts
        if pending:
            raise TransientError(f"{len(pending)} records kept colliding with concurrent writes; try again")
        return verdicts

    def _after_cancel(
        self,
        ref: ObjectRef,
        pending: list[_Put],
        reasons: list[Mapping[str, Any]],
        policy: ConflictPolicy,
        verdicts: dict[str, WriteVerdict],
        round_: int,
    ) -> list[_Put]:
        again: list[_Put] = []
        busy = False
        for put, reason in zip(pending, reasons, strict=False):
            code = str(reason.get("Code") or "None")
            if code == "None":
                again.append(put)  # innocent: cancelled because another item failed
            elif code == "ConditionalCheckFailed":
                old = reason.get("Item") or self._table.get(put.record.pk)
                if old is None:
                    put.replaces = None
                    again.append(put)
                    continue
                verdict = self._judge(ref, put, old, policy)
                if verdict is None:
                    again.append(put)
                else:
                    verdicts[put.record.pk] = verdict
            elif code == "ValidationError":
                raise PermanentError(f"DynamoDB refused record {put.record.pk!r}: {reason.get('Message', code)}")
            else:  # TransactionConflict, throttling: wait, then try again
                busy = True
                again.append(put)
        if busy:
            self._table.backoff(round_ + 1)
        return again

    # -- records: batch (BatchWriteItem) -----------------------------------------------
    def _batch_write(
        self, ref: ObjectRef, records: list[Record], received_at: str, now: str
    ) -> dict[str, WriteVerdict]:
        for start in range(0, len(records), BATCH_ITEMS):
            chunk = records[start : start + BATCH_ITEMS]
            request: Any = {
                self._table.name: [
                    {"PutRequest": {"Item": it.record_item(ref, r, received_at=received_at, now=now)}} for r in chunk
                ]
            }
            for attempt in range(MAX_ROUNDS + 1):
                response = self._table.call(
                    "writing records", self._table.client.batch_write_item, RequestItems=request
                )
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                if attempt == MAX_ROUNDS:
                    left = sum(len(v) for v in request.values())
                    raise TransientError(f"DynamoDB left {left} records unprocessed after {MAX_ROUNDS} retries")
                self._table.backoff(attempt + 1)
        return {r.pk: (Verdict.WRITTEN, "") for r in records}

    # -- taking a failed version's items back -----------------------------------------
    def _delete_chunk(self, ref: ObjectRef, pks: list[str]) -> None:
        for round_ in range(MAX_ROUNDS):
            if not pks:
                return
            actions: Any = [
                {
                    "Delete": {
                        "TableName": self._table.name,
                        "Key": {"pk": it.s(pk)},
                        "ConditionExpression": "#b = :b AND #k = :k AND #e = :e",
                        "ExpressionAttributeNames": {"#b": "bucket", "#k": "key", "#e": "etag"},
                        "ExpressionAttributeValues": {
                            ":b": it.s(ref.bucket),
                            ":k": it.s(ref.key),
                            ":e": it.s(ref.version),
                        },
                    }
                }
                for pk in pks
            ]
            try:
                self._table.call(
                    "removing a failed file's items", self._table.client.transact_write_items, TransactItems=actions
                )
            except Cancelled as cancelled:
                codes = [str(r.get("Code") or "None") for r in cancelled.reasons] or ["None"] * len(pks)
                # Not ours (any more), or gone: leave it. Innocent or throttled: again.
                pks = [pk for pk, code in zip(pks, codes, strict=False) if code != "ConditionalCheckFailed"]
                if any(code not in ("None", "ConditionalCheckFailed") for code in codes):
                    self._table.backoff(round_ + 1)
            else:
                return
        raise TransientError(f"{len(pks)} items of a failed file could not be removed yet; try again")
