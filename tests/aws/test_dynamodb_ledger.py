"""DynamoDBLedger beyond the shared contract: item shapes, DynamoDB's limits, write modes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from dockline.aws.items import MARKER_PREFIX, OUT_OF_RANGE, TOO_MANY_DIGITS
from dockline.aws.ledger import DynamoDBLedger
from dockline.errors import PermanentError, TransientError
from dockline.jsonx import dumps
from dockline.models import ConflictPolicy, ObjectRef, Outcome, Record, Status
from dockline.ports import SettledBefore
from tests.aws.conftest import TABLE
from tests.aws.world import CallLog

NOW = "2026-11-27T12:00:00.000Z"
REJECT = ConflictPolicy.REJECT


def rec(pk: str, payload: Any, index: int | None = None, *, oversized: bool = False) -> Record:
    canonical = dumps(payload)
    return Record(
        pk=pk,
        payload=None if oversized else payload,
        index=index,
        oversized=oversized,
        payload_bytes=len(canonical),
        canonical=canonical.decode(),
    )


def ref(key: str = "incoming/a.json", version: str = "0" * 32, **kw: Any) -> ObjectRef:
    return ObjectRef(bucket="landing", key=key, version=version, **kw)


def item(client: Any, pk: str) -> dict[str, Any] | None:
    raw = client.get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")
    if raw is None:
        return None
    des = TypeDeserializer()
    return {k: des.deserialize(v) for k, v in raw.items()}


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def ledger(dynamodb: Any, sleeps: list[float]) -> DynamoDBLedger:
    return DynamoDBLedger(TABLE, client=dynamodb, sleep=sleeps.append)


def test_a_document_item_has_the_seed_attributes_and_exact_numbers(ledger: DynamoDBLedger, dynamodb: Any) -> None:
    # GIVEN a document with prices as the core parses them (exact floats and Decimals)
    r = ref(size=120, sequencer="0055AED6DCD90281E5", event_time="2026-11-27T11:59:59.000Z")
    payload = {"id": "o-1", "price": 19.99, "tax": Decimal("0.1"), "tiny": Decimal("1E-7"), "qty": 3, "ok": True}
    ledger.begin(r, now="2026-11-27T11:59:59.500Z")
    # WHEN it is written
    report = ledger.write(r, [rec("o-1", payload)], policy=REJECT, now=NOW)
    # THEN one item holds the payload exactly, plus where it came from (no outbox flag:
    # that is on the file marker, so closing it never rewrites the document)
    assert report.written == ("o-1",)
    stored = item(dynamodb, "o-1")
    assert stored is not None
    assert stored["payload"] == {
        "id": "o-1",
        "price": Decimal("19.99"),
        "tax": Decimal("0.1"),
        "tiny": Decimal("1E-7"),
        "qty": 3,
        "ok": True,
    }
    assert {k: stored[k] for k in ("bucket", "key", "etag", "status", "size")} == {
        "bucket": "landing",
        "key": "incoming/a.json",
        "etag": "0" * 32,
        "status": "processed",
        "size": 120,
    }
    assert "notified" not in stored
    assert stored["sequencer"] == "0055AED6DCD90281E5"
    assert stored["event_time"] == "2026-11-27T11:59:59.000Z"
    assert stored["received_at"] == "2026-11-27T11:59:59.500Z"
    assert stored["processed_at"] == NOW
    assert stored["content_hash"] == rec("o-1", payload).content_hash
    assert "record_index" not in stored


def test_an_oversized_document_is_stored_as_a_reference_with_its_hash(ledger: DynamoDBLedger, dynamodb: Any) -> None:
    record = rec("big", {"id": "big", "blob": "x" * 600_000}, oversized=True)
    ledger.write(ref(), [record], policy=REJECT, now=NOW)
    stored = item(dynamodb, "big")
    assert stored is not None
    assert "payload" not in stored
    assert stored["oversized"] is True
    assert stored["payload_ref"] == f"s3://landing/incoming/a.json?etag={'0' * 32}"
    assert stored["content_hash"] == record.content_hash


def test_a_payload_small_as_json_but_too_big_as_an_item_becomes_a_reference(
    ledger: DynamoDBLedger, dynamodb: Any
) -> None:
    # GIVEN 120,000 one-digit numbers: ~240 KB of JSON (under the core's inline limit),
    # but each costs DynamoDB ~3 bytes plus list overhead: beyond 400 KB
    payload = {"id": "dense", "v": [7] * 140_000}
    record = rec("dense", payload)
    assert record.payload_bytes < 350_000
    ledger.write(ref(), [record], policy=REJECT, now=NOW)
    stored = item(dynamodb, "dense")
    assert stored is not None
    assert stored["oversized"] is True
    assert "payload" not in stored


def test_a_number_beyond_38_significant_digits_fails_with_the_documented_reason(ledger: DynamoDBLedger) -> None:
    big = 12345678901234567890123456789012345678901  # 41 significant digits
    with pytest.raises(PermanentError) as raised:
        ledger.write(ref(), [rec("n", {"id": "n", "items": [{"qty": big}]})], policy=REJECT, now=NOW)
    assert str(raised.value) == f"{TOO_MANY_DIGITS} (at $.items[0].qty)"
    assert TOO_MANY_DIGITS == "a number has more than 38 significant digits, which DynamoDB cannot store"


def test_a_long_number_with_few_significant_digits_is_stored_exactly(ledger: DynamoDBLedger, dynamodb: Any) -> None:
    # 10**40 has 41 digits but only one significant one: DynamoDB can hold it
    ledger.write(
        ref(),
        [rec("z", {"id": "z", "n": 10**40, "d": Decimal("1.0000000000000000000000000000000000000000")})],
        policy=REJECT,
        now=NOW,
    )
    stored = item(dynamodb, "z")
    assert stored is not None
    assert stored["payload"]["n"] == 10**40
    assert stored["payload"]["d"] == 1


def test_a_number_outside_dynamodbs_range_fails_clearly(ledger: DynamoDBLedger) -> None:
    with pytest.raises(PermanentError, match="outside the range DynamoDB can store"):
        ledger.write(ref(), [rec("r", {"id": "r", "x": Decimal("1E-200")})], policy=REJECT, now=NOW)
    assert "1E-130" in OUT_OF_RANGE


def test_a_document_nested_deeper_than_dynamodb_allows_fails_clearly(ledger: DynamoDBLedger) -> None:
    deep: Any = {"leaf": 1}
    for _ in range(40):
        deep = {"d": deep}
    with pytest.raises(PermanentError, match="nested 41 levels deep; DynamoDB stores at most 32"):
        ledger.write(ref(), [rec("deep", {"id": "deep", **deep})], policy=REJECT, now=NOW)


def test_records_of_one_file_carry_their_index_and_no_outbox_flag(ledger: DynamoDBLedger, dynamodb: Any) -> None:
    r = ref("incoming/batch.jsonl")
    ledger.write(r, [rec("k1", {"id": "k1"}, 1), rec("k2", {"id": "k2"}, 2)], policy=REJECT, now=NOW)
    stored = item(dynamodb, "k2")
    assert stored is not None
    assert stored["record_index"] == 2
    assert "notified" not in stored


def test_one_transaction_writes_up_to_100_records_and_classifies_a_mixed_chunk(
    ledger: DynamoDBLedger, dynamodb: Any
) -> None:
    # GIVEN an earlier file that holds ids d (same content) and c (other content)
    first = ref("incoming/first.jsonl", "1" * 32)
    ledger.write(first, [rec("d", {"id": "d", "v": 1}, 1), rec("c", {"id": "c", "v": 1}, 2)], policy=REJECT, now=NOW)
    calls = CallLog()
    dynamodb.meta.events.register("before-call", calls)
    # WHEN a file of 150 records, two of them d and c, is written
    second = ref("incoming/second.jsonl", "2" * 32)
    records = [rec(f"n{i}", {"id": f"n{i}"}, i) for i in range(1, 149)]
    records += [rec("d", {"id": "d", "v": 1}, 149), rec("c", {"id": "c", "v": 2}, 150)]
    report = ledger.write(second, records, policy=REJECT, now=NOW)
    # THEN every new record is written, d is a duplicate and c a conflict with the first kept
    assert len(report.written) == 148
    assert report.duplicates == ("d",)
    assert report.conflicts == (("c", "incoming/first.jsonl"),)
    stored_c = item(dynamodb, "c")
    assert stored_c is not None
    assert stored_c["payload"] == {"id": "c", "v": 1}
    assert stored_c["key"] == "incoming/first.jsonl"
    # AND it took two transactions of <= 100, plus one retry of the cancelled one
    assert calls.count()["dynamodb.TransactWriteItems"] == 3


def test_the_same_id_twice_in_one_file_is_judged_by_the_shared_rule(ledger: DynamoDBLedger, dynamodb: Any) -> None:
    # Was: the later line silently won (issue 8, item 14); the shared contract now pins
    # the rule for every backend. Here: what DynamoDB holds afterwards.
    r = ref("incoming/twice.jsonl")
    report = ledger.write(
        r, [rec("x", {"id": "x", "v": 1}, 1), rec("x", {"id": "x", "v": 2}, 2)], policy=REJECT, now=NOW
    )
    assert report.written == ("x",)
    assert report.conflicts == (("x", "incoming/twice.jsonl (line 2)"),)
    stored = item(dynamodb, "x")
    assert stored is not None
    assert stored["payload"]["v"] == 1
    # AND in a later chunk of the same file, too
    report = ledger.write(r, [rec("x", {"id": "x", "v": 3}, 3)], policy=REJECT, now=NOW)
    assert report.conflicts == (("x", "incoming/twice.jsonl (line 3)"),)
    stored = item(dynamodb, "x")
    assert stored is not None
    assert stored["payload"]["v"] == 1

def test_a_throttled_transaction_is_retried_after_a_backoff(
    ledger: DynamoDBLedger, dynamodb: Any, sleeps: list[float]
) -> None:
    cancelled = [True]

    def throttle_once(**_: Any) -> None:
        if cancelled.pop() if cancelled else False:
            response: Any = {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}],
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            raise ClientError(response, "TransactWriteItems")

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", throttle_once)
    report = ledger.write(
        ref("incoming/t.jsonl"), [rec("a", {"id": "a"}, 1), rec("b", {"id": "b"}, 2)], policy=REJECT, now=NOW
    )
    assert report.written == ("a", "b")
    assert len(sleeps) == 1
    assert item(dynamodb, "a") is not None


def test_batch_mode_writes_25_per_call_and_retries_unprocessed_items(dynamodb: Any, sleeps: list[float]) -> None:
    # GIVEN the batch write mode, and DynamoDB leaving 5 items unprocessed once
    ledger = DynamoDBLedger(TABLE, client=dynamodb, record_writes="batch", sleep=sleeps.append)
    left = [True]

    def leave_five(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if left and left.pop():
            parsed["UnprocessedItems"] = {TABLE: [{"PutRequest": {"Item": {"pk": {"S": f"r{i}"}}}} for i in range(5)]}

    dynamodb.meta.events.register("after-call.dynamodb.BatchWriteItem", leave_five)
    calls = CallLog()
    dynamodb.meta.events.register("before-call", calls)
    # WHEN 60 records are written
    report = ledger.write(
        ref("incoming/b.ndjson"), [rec(f"r{i}", {"id": f"r{i}"}, i) for i in range(60)], policy=REJECT, now=NOW
    )
    # THEN all are written: 3 calls of <= 25, one retry after a backoff
    assert len(report.written) == 60
    assert calls.count()["dynamodb.BatchWriteItem"] == 4
    assert len(sleeps) == 1


def test_batch_mode_gives_up_for_now_when_items_stay_unprocessed(dynamodb: Any, sleeps: list[float]) -> None:
    ledger = DynamoDBLedger(TABLE, client=dynamodb, record_writes="batch", sleep=sleeps.append)

    def leave_one(parsed: dict[str, Any], **_: Any) -> None:
        parsed["UnprocessedItems"] = {TABLE: [{"PutRequest": {"Item": {"pk": {"S": "r0"}}}}]}

    dynamodb.meta.events.register("after-call.dynamodb.BatchWriteItem", leave_one)
    with pytest.raises(TransientError, match="unprocessed"):
        ledger.write(ref("incoming/b.ndjson"), [rec("r0", {"id": "r0"}, 1)], policy=REJECT, now=NOW)


def test_settle_writes_a_marker_for_a_failed_file_and_owes_one_notification(
    ledger: DynamoDBLedger, dynamodb: Any
) -> None:
    r = ref("incoming/bad.json")
    failed = Outcome(ref=r, status=Status.FAILED, error="truncated JSON", attempts=2)
    ledger.begin(r, now="2026-11-27T11:00:00.000Z")
    assert ledger.settle(failed, now=NOW) is True
    marker = item(dynamodb, f"{MARKER_PREFIX}landing/incoming/bad.json@{'0' * 32}")
    assert marker is not None
    assert {k: marker[k] for k in ("status", "error", "notified", "attempts", "received_at")} == {
        "status": "failed",
        "error": "truncated JSON",
        "notified": False,
        "attempts": 2,
        "received_at": "2026-11-27T11:00:00.000Z",
    }
    # WHEN the same version settles again before the notification went out: still owed
    assert ledger.settle(failed, now=NOW) is True
    ledger.mark_notified(failed)
    # AND once it went out, a settle finds the version settled before (its recorded state)
    again = ledger.settle(failed, now=NOW)
    assert isinstance(again, SettledBefore)
    assert (again.prior.status, again.prior.error, again.prior.notified) == (Status.FAILED, "truncated JSON", True)


@pytest.mark.parametrize("status", [Status.DUPLICATE, Status.SUPERSEDED])
def test_item1_a_settle_retried_within_one_attempt_is_that_attempts_own_not_a_version_settled_before(
    ledger: DynamoDBLedger, status: Status
) -> None:
    # GIVEN a version that owes no notification, settled by this attempt (its marker is
    # notified at once), and the call retried (its answer lost, or a batch taken file by file)
    r = ref("incoming/quiet.json")
    ledger.begin(r, now=NOW)
    outcome = Outcome(ref=r, status=status, error="nothing new")
    assert ledger.settle(outcome, now=NOW) is False
    # WHEN it settles again in the same attempt: still this attempt's, owing nothing
    assert ledger.settle(outcome, now=NOW) is False
    # THEN a new delivery of it (begin) finds it settled before
    ledger.begin(r, now=NOW)
    again = ledger.settle(outcome, now=NOW)
    assert isinstance(again, SettledBefore)
    assert (again.prior.status, again.prior.notified) == (status, True)


def test_mark_notified_never_marks_a_newer_version_that_replaced_the_item(
    ledger: DynamoDBLedger, dynamodb: Any
) -> None:
    # GIVEN v1 written, then overwritten by a newer v2 before v1's notification went out
    v1 = ref(version="1" * 32, sequencer="01")
    v2 = ref(version="2" * 32, sequencer="02")
    ledger.write(v1, [rec("x", {"id": "x", "v": 1})], policy=ConflictPolicy.OVERWRITE, now=NOW)
    ledger.write(v2, [rec("x", {"id": "x", "v": 2})], policy=ConflictPolicy.OVERWRITE, now=NOW)
    # WHEN v1's outbox is closed
    ledger.mark_notified(Outcome(ref=v1, status=Status.PROCESSED, pk="x", records=1))
    # THEN v1's own marker says so, and v2's item is untouched
    v1_marker = item(dynamodb, f"{MARKER_PREFIX}landing/incoming/a.json@{'1' * 32}")
    assert v1_marker is not None
    assert (v1_marker["etag"], v1_marker["notified"]) == ("1" * 32, True)
    stored = item(dynamodb, "x")
    assert stored is not None
    assert (stored["etag"], stored["payload"]["v"]) == ("2" * 32, 2)
    assert "notified" not in stored
    # AND v2's outbox stays open: it has no marker, and settling it still owes a notification
    assert item(dynamodb, f"{MARKER_PREFIX}landing/incoming/a.json@{'2' * 32}") is None
    elsewhere = DynamoDBLedger(TABLE, client=dynamodb)
    assert elsewhere.settle(Outcome(ref=v2, status=Status.PROCESSED, pk="x", records=1), now=NOW) is True


def test_mark_notified_of_a_document_puts_its_marker_stamped_by_settle(ledger: DynamoDBLedger, dynamodb: Any) -> None:
    r = ref(size=13, sequencer="0055AED6DCD90281E5")
    outcome = Outcome(ref=r, status=Status.PROCESSED, pk="o-1", records=1, sha256="ab" * 32, attempts=2)
    ledger.begin(r, now="2026-11-27T11:59:59.500Z")
    ledger.write(r, [rec("o-1", {"id": "o-1"})], policy=REJECT, now=NOW)
    assert ledger.settle(outcome, now="2026-11-27T12:00:00.250Z") is True
    calls = CallLog()
    dynamodb.meta.events.register("before-call", calls)
    # WHEN the notification went out
    ledger.mark_notified(outcome)
    # THEN one PutItem wrote the version's marker: processed, notified, pointing at the item
    assert calls.calls == ["dynamodb.PutItem"]
    marker = item(dynamodb, f"{MARKER_PREFIX}landing/incoming/a.json@{'0' * 32}")
    assert marker is not None
    assert {k: marker[k] for k in ("status", "item_pk", "notified", "records", "attempts", "sha256", "etag")} == {
        "status": "processed",
        "item_pk": "o-1",
        "notified": True,
        "records": 1,
        "attempts": 2,
        "sha256": "ab" * 32,
        "etag": "0" * 32,
    }
    assert (marker["received_at"], marker["processed_at"]) == ("2026-11-27T11:59:59.500Z", "2026-11-27T12:00:00.250Z")


def test_settling_a_document_this_process_did_not_write_asks_its_marker(ledger: DynamoDBLedger, dynamodb: Any) -> None:
    # GIVEN a document written and notified by one container
    r = ref()
    outcome = Outcome(ref=r, status=Status.PROCESSED, pk="o-1", records=1)
    ledger.write(r, [rec("o-1", {"id": "o-1"})], policy=REJECT, now=NOW)
    other = DynamoDBLedger(TABLE, client=dynamodb)
    # WHEN another container settles it: owed while there is no marker, not once notified
    assert other.settle(outcome, now=NOW) is True
    ledger.settle(outcome, now=NOW)
    ledger.mark_notified(outcome)
    calls = CallLog()
    dynamodb.meta.events.register("before-call", calls)
    settled = DynamoDBLedger(TABLE, client=dynamodb).settle(outcome, now=NOW)
    assert isinstance(settled, SettledBefore)  # nothing owed, and not this attempt's work
    assert (settled.prior.status, settled.prior.pk, settled.prior.records) == (Status.PROCESSED, "o-1", 1)
    assert calls.calls == ["dynamodb.GetItem"]


def test_a_failed_marker_of_the_same_version_does_not_count_as_notified_processed(
    ledger: DynamoDBLedger, dynamodb: Any
) -> None:
    # GIVEN a version that once failed (and was notified as failed), then was written as a
    # document after a change of configuration, and the container died before publishing
    r = ref()
    failed = Outcome(ref=r, status=Status.FAILED, error="too big")
    ledger.settle(failed, now=NOW)
    ledger.mark_notified(failed)
    ledger.write(r, [rec("o-1", {"id": "o-1"})], policy=REJECT, now=NOW)
    # WHEN it is delivered again
    again = DynamoDBLedger(TABLE, client=dynamodb)
    again.begin(r, now=NOW)
    assert again.write(r, [rec("o-1", {"id": "o-1"})], policy=REJECT, now=NOW).written == ("o-1",)
    processed = Outcome(ref=r, status=Status.PROCESSED, pk="o-1", records=1)
    # THEN the processed notification is still owed, and closing it replaces the failed marker
    assert again.settle(processed, now=NOW) is True
    again.mark_notified(processed)
    state = again.file_state(r)
    assert state is not None
    assert (state.status, state.notified) == (Status.PROCESSED, True)


def test_a_document_item_from_before_the_outbox_moved_is_trusted_when_notified(
    ledger: DynamoDBLedger, dynamodb: Any
) -> None:
    # GIVEN an item written by the earlier layout: notified on the item, no marker
    r = ref()
    legacy = {"pk": {"S": "old"}, "bucket": {"S": "landing"}, "key": {"S": "incoming/a.json"}}
    legacy |= {"etag": {"S": "0" * 32}, "content_hash": {"S": rec("old", {"id": "old"}).content_hash}}
    dynamodb.put_item(TableName=TABLE, Item={**legacy, "notified": {"BOOL": True}})
    calls = CallLog()
    dynamodb.meta.events.register("before-call", calls)
    # WHEN its version is delivered again
    ledger.begin(r, now=NOW)
    assert ledger.write(r, [rec("old", {"id": "old"})], policy=REJECT, now=NOW).written == ("old",)
    # THEN nothing is owed, and no marker had to be read
    settled = ledger.settle(Outcome(ref=r, status=Status.PROCESSED, pk="old", records=1), now=NOW)
    assert isinstance(settled, SettledBefore)
    assert (settled.prior.status, settled.prior.notified) == (Status.PROCESSED, True)
    assert calls.calls == ["dynamodb.PutItem"]


def test_a_late_redelivery_of_a_notified_version_replaced_by_a_newer_one_sends_nothing(
    ledger: DynamoDBLedger, dynamodb: Any
) -> None:
    # GIVEN v1 processed and notified, then replaced by a newer v2 (overwrite policy)
    v1 = ref(version="1" * 32, sequencer="01")
    v2 = ref(version="2" * 32, sequencer="02")
    first = Outcome(ref=v1, status=Status.PROCESSED, pk="x", records=1)
    ledger.write(v1, [rec("x", {"id": "x", "v": 1})], policy=ConflictPolicy.OVERWRITE, now=NOW)
    ledger.settle(first, now=NOW)
    ledger.mark_notified(first)
    ledger.write(v2, [rec("x", {"id": "x", "v": 2})], policy=ConflictPolicy.OVERWRITE, now=NOW)
    # WHEN v1 is delivered again: it cannot be applied (a conflict with the newer v2)...
    ledger.begin(v1, now=NOW)
    report = ledger.write(v1, [rec("x", {"id": "x", "v": 1})], policy=ConflictPolicy.OVERWRITE, now=NOW)
    assert [pk for pk, _ in report.conflicts] == ["x"]
    # ...THEN its own processed, notified marker is found: no conflict notice for it
    conflict = Outcome(ref=v1, status=Status.CONFLICT, pk="x", error="other content")
    settled = ledger.settle(conflict, now=NOW)
    assert isinstance(settled, SettledBefore)
    assert settled.prior.status is Status.PROCESSED  # reported as what it settled as, not a conflict


def test_reopen_removes_only_a_failed_marker(ledger: DynamoDBLedger, dynamodb: Any) -> None:
    failed, conflict = ref("incoming/f.json"), ref("incoming/c.json")
    ledger.settle(Outcome(ref=failed, status=Status.FAILED, error="bad"), now=NOW)
    ledger.settle(Outcome(ref=conflict, status=Status.CONFLICT, error="other content", pk="x"), now=NOW)
    assert ledger.reopen(failed) is True
    assert ledger.reopen(conflict) is False
    assert ledger.reopen(ref("incoming/never.json")) is False
    assert ledger.file_state(failed) is None
    state = ledger.file_state(conflict)
    assert state is not None
    assert state.status is Status.CONFLICT


def test_a_big_per_record_file_reads_its_marker_first_and_small_ones_do_not(dynamodb: Any) -> None:
    ledger = DynamoDBLedger(TABLE, client=dynamodb, claim_min_bytes=1000)
    big = ref("incoming/big.ndjson", size=5000)
    small = ref("incoming/small.ndjson", size=10)
    for r in (big, small):
        ledger.settle(Outcome(ref=r, status=Status.PROCESSED, records=10), now=NOW)
    calls = CallLog()
    dynamodb.meta.events.register("before-call", calls)
    # WHEN both are delivered again
    prior = ledger.begin(big, now=NOW)
    assert ledger.begin(small, now=NOW) is None
    # THEN the big one is recognised as settled at once (one read), the small one costs nothing
    assert prior is not None
    assert prior.status is Status.PROCESSED
    assert prior.records == 10
    assert calls.calls == ["dynamodb.GetItem"]
