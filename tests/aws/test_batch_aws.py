"""Issue 11, item 1 (AWS half): an SQS batch of small files goes through the core's batch
path; the processed documents' file markers share a BatchWriteItem and the notifications
a PublishBatch. Each file keeps the outcome, items, marker, notification, dead letter and
batchItemFailures entry the per-file path gives it; a shared call that fails (whole or in
part) falls back to one call per file.

moto in process; partial failures are made by botocore ``before-call`` hooks that do part
of the call through a client without hooks and answer for the rest as AWS would.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
from moto import mock_aws

from dockline.aws import handler as handler_module
from dockline.aws.handler import FileTimes, handle
from tests.aws.conftest import REGION, TABLE
from tests.aws.world import Fault, World, for_item

GOOD = [f"incoming/ok-{n}.json" for n in range(7)]
BAD, DUP, CONFLICT = "incoming/bad.json", "incoming/dup.json", "incoming/conflict.json"


def _ten_files(world: World) -> dict[str, Any]:
    """A settled document "x", then an SQS batch of 10: seven new documents, a bad file, a
    duplicate of "x" and a conflict with it."""
    world.put("incoming/first.json", '{"id": "x", "n": 1}')
    handle(world.drain_input(), world.engine)
    world.notifications()
    for n, key in enumerate(GOOD):
        world.put(key, json.dumps({"id": f"ok{n}", "price": n + 0.5}))
    world.put(BAD, "{")
    world.put(DUP, '{"id": "x", "n": 1}')
    world.put(CONFLICT, '{"id": "x", "n": 2}')
    event = world.drain_input()
    assert len(event["Records"]) == 10
    return event


def _key_of(record: dict[str, Any]) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(json.loads(record["body"])["Records"][0]["s3"]["object"]["key"])


_EVENT_STAMPS = ("event_time", "sequencer")  # moto's S3 events carry the wall clock's time


def _unstamped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unstamped(v) for k, v in value.items() if k not in _EVENT_STAMPS}
    return value


def _what_happened(world: World, event: dict[str, Any], failures: list[str]) -> dict[str, Any]:
    """Everything a file leaves behind, keyed by file (message ids and S3 event times differ
    between worlds; the ledger's own clock is fixed)."""
    keys = {r["messageId"]: _key_of(r) for r in event["Records"]}
    return {
        "items": {pk: _unstamped(item) for pk, item in world.items().items()},
        "notifications": sorted(json.dumps(n, sort_keys=True) for n in world.notifications()),
        "dead_letters": sorted(json.dumps(_unstamped(b), sort_keys=True) for b in world.dead_letter_bodies()),
        "handed_back": sorted(keys[m] for m in failures),
    }


def _run(*, batched: bool) -> tuple[dict[str, Any], list[str]]:
    with mock_aws():
        world = World()
        event = _ten_files(world)
        world.calls.reset()
        failures: list[str] = []
        events = [event] if batched else [{"Records": [r]} for r in event["Records"]]
        for one in events:
            failures += [f["itemIdentifier"] for f in handle(one, world.engine)["batchItemFailures"]]
        return _what_happened(world, event, failures), list(world.calls.calls)


def test_item1_a_batch_of_ten_leaves_what_ten_single_deliveries_leave_in_fewer_calls() -> None:
    # GIVEN the same ten files (seven new, a bad one, a duplicate and a conflict) in two worlds
    # WHEN one world gets them as ten deliveries of one file, the other as one SQS batch of ten
    single, single_calls = _run(batched=False)
    batch, batch_calls = _run(batched=True)
    # THEN every item, marker (outcome, counts, outbox flag), notification and dead letter is the same
    assert batch == single
    assert len([pk for pk in batch["items"] if pk.startswith("dockline#file#")]) == 1 + 7 + 3
    assert len(batch["notifications"]) == 7 + 2  # the duplicate owes none
    assert batch["handed_back"] == []
    # AND the batch shared its markers and notifications: 10 reads, 10 conditional puts, one
    # PublishBatch for the 9 notifications, one BatchWriteItem for the 7 processed markers
    count = {c: batch_calls.count(c) for c in set(batch_calls)}
    assert count["dynamodb.BatchWriteItem"] == 1
    assert count["sns.PublishBatch"] == 1
    assert "sns.Publish" not in count
    assert count["s3.GetObject"] == 10
    assert len(batch_calls) < len(single_calls) - 12, (len(batch_calls), len(single_calls))


def test_item1_a_throttled_file_in_a_batch_is_handed_back_alone(moto: None) -> None:
    # GIVEN a batch of five documents, and DynamoDB throttling every write of one of them
    world = World()
    for n in range(5):
        world.put(f"incoming/f{n}.json", json.dumps({"id": f"f{n}"}))
    event = world.drain_input()
    stuck = next(r["messageId"] for r in event["Records"] if _key_of(r) == "incoming/f2.json")
    fault = Fault("ProvisionedThroughputExceededException", 400, when=for_item("f2"))
    world.dynamodb.meta.events.register("before-parameter-build.dynamodb.PutItem", fault)
    # WHEN the batch is handled
    result = handle(event, world.engine)
    # THEN only that file's message is handed back; the others are settled and notified once
    assert result == {"batchItemFailures": [{"itemIdentifier": stuck}]}
    assert sorted(world.records()) == ["f0", "f1", "f3", "f4"]
    assert sorted(n["attributes"]["pk"] for n in world.notifications()) == ["f0", "f1", "f3", "f4"]
    assert world.marker("incoming/f2.json") is None
    assert all(world.marker(f"incoming/f{n}.json")["notified"] for n in (0, 1, 3, 4))  # type: ignore[index]


def _hookless(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


class _Answer:
    """What a ``before-call`` hook returns to answer a call itself: (HTTP response, parsed)."""

    status_code = 200


def _answering(client: Any, operation: str, answer: Any) -> None:
    """Make ``answer(params)`` (the call's API parameters) answer ``operation`` instead of moto."""
    seen: list[dict[str, Any]] = []
    client.meta.events.register(
        f"before-parameter-build.{client.meta.service_model.service_name}.{operation}",
        lambda params, **_: seen.append(params),
    )
    client.meta.events.register(
        f"before-call.{client.meta.service_model.service_name}.{operation}",
        lambda **_: (_Answer(), answer(seen.pop())),
    )


def test_item1_when_the_shared_batchwriteitem_fails_each_marker_is_put_on_its_own(moto: None) -> None:
    # GIVEN DynamoDB refusing every BatchWriteItem (after botocore's own retries)
    world = World()
    for n in range(4):
        world.put(f"incoming/m{n}.json", json.dumps({"id": f"m{n}"}))
    event = world.drain_input()
    fault = Fault("InternalServerError", 500)
    world.dynamodb.meta.events.register("before-call.dynamodb.BatchWriteItem", fault)
    world.calls.reset()
    # WHEN the batch is handled
    result = handle(event, world.engine)
    # THEN it was tried, then each marker was put alone: every file settled, notified once
    assert fault.raised >= 1
    assert result == {"batchItemFailures": []}
    assert len(world.notifications()) == 4
    assert all(world.marker(f"incoming/m{n}.json")["notified"] for n in range(4))  # type: ignore[index]
    count = world.calls.count()
    assert count["dynamodb.PutItem"] == 4 + 4  # the documents, then the markers one by one
    assert count["s3.GetObject"] == 4  # nothing read twice: only the markers' step fell back


def test_item1_markers_dynamodb_leaves_unprocessed_are_put_on_their_own(moto: None) -> None:
    # GIVEN a BatchWriteItem that stores the first two markers and leaves the rest unprocessed
    world = World()
    for n in range(5):
        world.put(f"incoming/u{n}.json", json.dumps({"id": f"u{n}"}))
    event = world.drain_input()
    plain = _hookless("dynamodb")
    left: list[str] = []

    def partly(params: dict[str, Any]) -> Any:
        requests = params["RequestItems"][TABLE]
        plain.batch_write_item(RequestItems={TABLE: requests[:2]})
        rest = requests[2:]
        left.extend(r["PutRequest"]["Item"]["pk"]["S"] for r in rest)
        return {"UnprocessedItems": {TABLE: rest} if rest else {}}

    _answering(world.dynamodb, "BatchWriteItem", partly)
    world.calls.reset()
    # WHEN the batch is handled
    result = handle(event, world.engine)
    # THEN the three left over were retried once (two stored), and the last put on its own
    assert len(left) == 3 + 1
    assert world.calls.count()["dynamodb.PutItem"] == 5 + 1
    assert result == {"batchItemFailures": []}
    assert all(world.marker(f"incoming/u{n}.json")["notified"] for n in range(5))  # type: ignore[index]
    assert len(world.notifications()) == 5


def test_item1_notifications_sns_refuses_in_a_publishbatch_are_published_on_their_own(moto: None) -> None:
    # GIVEN a PublishBatch that sends the first entries and reports the last one failed
    world = World()
    for n in range(3):
        world.put(f"incoming/p{n}.json", json.dumps({"id": f"p{n}"}))
    event = world.drain_input()
    plain = _hookless("sns")

    def last_fails(params: dict[str, Any]) -> Any:
        entries = params["PublishBatchRequestEntries"]
        plain.publish_batch(TopicArn=params["TopicArn"], PublishBatchRequestEntries=entries[:-1])
        failed = {"Id": entries[-1]["Id"], "Code": "InternalError", "SenderFault": False}
        return {"Successful": [{"Id": e["Id"]} for e in entries[:-1]], "Failed": [failed]}

    _answering(world.sns, "PublishBatch", last_fails)
    world.calls.reset()
    # WHEN the batch is handled
    result = handle(event, world.engine)
    # THEN the refused one went out alone: each file notified exactly once
    assert result == {"batchItemFailures": []}
    assert sorted(n["attributes"]["pk"] for n in world.notifications()) == ["p0", "p1", "p2"]
    assert world.calls.count()["sns.Publish"] == 1


def test_item1_a_second_delivery_of_a_version_in_the_same_batch_is_not_notified_twice(moto: None) -> None:
    # GIVEN an SQS batch that holds the same S3 event twice (S3 delivers at least once)
    world = World()
    world.put("incoming/twice.json", '{"id": "twice"}')
    world.put("incoming/other.json", '{"id": "other"}')
    records = world.drain_input()["Records"]
    again = {**records[0], "messageId": "again"}
    # WHEN it is handled
    result = handle({"Records": [*records, again]}, world.engine)
    # THEN one item and one notification per file
    assert result == {"batchItemFailures": []}
    assert sorted(world.records()) == ["other", "twice"]
    assert sorted(n["attributes"]["pk"] for n in world.notifications()) == ["other", "twice"]


def test_item1_with_a_deadline_the_first_file_goes_alone_then_the_rest_share_calls(moto: None) -> None:
    # GIVEN a fresh container (no file timed yet), four files, and plenty of time
    world = World()
    for n in range(4):
        world.put(f"incoming/d{n}.json", json.dumps({"id": f"d{n}"}))
    event = world.drain_input()

    class Plenty:
        aws_request_id = "req-batch"

        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    world.calls.reset()
    # WHEN handled
    result = handle(event, world.engine, context=Plenty(), file_times=FileTimes())
    # THEN the first file set the pace on its own; the other three went as one batch
    assert result == {"batchItemFailures": []}
    count = world.calls.count()
    assert (count["sns.Publish"], count["sns.PublishBatch"], count["dynamodb.BatchWriteItem"]) == (1, 1, 1)
    assert len(world.notifications()) == 4


def test_item1_a_batch_takes_only_as_many_files_as_the_time_left_holds_at_the_slowest_pace(moto: None) -> None:
    # GIVEN a container whose slowest file took 1 s, four files, and 2.5 s left beyond the margin
    world = World()
    for n in range(4):
        world.put(f"incoming/k{n}.json", json.dumps({"id": f"k{n}"}))
    event = world.drain_input()
    times = FileTimes()
    times.record(1_000)
    deadline = handler_module.SAFETY_MARGIN_MS + 2_500

    class Left:
        aws_request_id = "req-pace"

        def __init__(self) -> None:
            self.until = time.monotonic() + deadline / 1000

        def get_remaining_time_in_millis(self) -> int:
            return int((self.until - time.monotonic()) * 1000)

    world.calls.reset()
    # WHEN handled
    result = handle(event, world.engine, context=Left(), file_times=times)
    # THEN two batches of two (2 x 1 s fit in 2.5 s, 3 x 1 s do not), and every file settled
    assert result == {"batchItemFailures": []}
    count = world.calls.count()
    assert (count["sns.PublishBatch"], count["dynamodb.BatchWriteItem"], count["sns.Publish"]) == (2, 2, 0)
    assert len(world.notifications()) == 4
