"""Nothing lost, nothing doubled: faults injected with botocore event hooks, and the
delivery orders S3 really produces (duplicates, out of order, re-uploads, conflicts)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockline.aws.handler import handle
from dockline.config import PipelineSettings
from dockline.errors import TransientError
from dockline.models import ConflictPolicy
from tests.aws.world import Fault, World, fail_with, for_item, s3_record


@pytest.fixture
def world(moto: None) -> World:
    return World()


@pytest.mark.parametrize(
    ("code", "status"), [("ProvisionedThroughputExceededException", 400), ("InternalServerError", 500)]
)
def test_dynamodb_throttling_then_success_is_retried_into_one_row(world: World, code: str, status: int) -> None:
    # GIVEN DynamoDB refuses the first two writes
    fault = fail_with(code, status, times=2)
    world.dynamodb.meta.events.register("before-call.dynamodb.PutItem", fault)
    world.put("incoming/t.json", '{"id": "t"}')
    # WHEN the file arrives
    result = handle(world.drain_input(), world.engine)
    # THEN the pipeline retried: the file is processed, once, with one notification
    assert result == {"batchItemFailures": []}
    assert list(world.records()) == ["t"]
    assert len(world.notifications()) == 1
    assert fault.raised == 2
    # the calls that went through: the item, then the marker that closes the outbox
    assert world.calls.count()["dynamodb.PutItem"] == 2


def test_throttling_forever_hands_back_only_that_message(world: World) -> None:
    # GIVEN two files in one SQS batch, and DynamoDB throttling every write of one of them
    world.put("incoming/ok.json", '{"id": "ok"}')
    world.put("incoming/stuck.json", '{"id": "stuck"}')
    event = world.drain_input()
    stuck_id = next(r["messageId"] for r in event["Records"] if "stuck" in r["body"])
    fault = Fault("ProvisionedThroughputExceededException", 400, when=for_item("stuck"))
    world.dynamodb.meta.events.register("before-parameter-build.dynamodb.PutItem", fault)
    # WHEN the batch is handled
    result = handle(event, world.engine)
    # THEN only the stuck file's message is reported; the other file is processed
    assert result == {"batchItemFailures": [{"itemIdentifier": stuck_id}]}
    assert list(world.records()) == ["ok"]
    assert [n["attributes"]["pk"] for n in world.notifications()] == ["ok"]
    # AND nothing was recorded for the stuck one: it is retried, not settled
    assert world.marker("incoming/stuck.json") is None
    assert [m["key"] for m in world.markers().values()] == ["incoming/ok.json"]


def test_direct_mode_raises_after_processing_the_other_files(world: World) -> None:
    world.put("incoming/ok.json", '{"id": "ok"}')
    world.put("incoming/stuck.json", '{"id": "stuck"}')
    event = world.event("incoming/stuck.json", "incoming/ok.json")
    fault = Fault("InternalServerError", 500, when=for_item("stuck"))
    world.dynamodb.meta.events.register("before-parameter-build.dynamodb.PutItem", fault)
    # WHEN the direct event is handled THEN Lambda is told to retry it...
    with pytest.raises(TransientError, match=r"1 of 2 files must be retried: 'incoming/stuck.json'"):
        handle(event, world.engine)
    # ...after the healthy file was processed
    assert list(world.records()) == ["ok"]


def test_sns_failure_after_the_ledger_write_is_notified_once_after_recovery(world: World) -> None:
    # GIVEN SNS is down when the file arrives
    outage = fail_with("InternalError", 500)
    world.sns.meta.events.register("before-call.sns.Publish", outage)
    world.put("incoming/outbox.json", '{"id": "outbox"}')
    event = world.drain_input()
    # WHEN it is handled, the row is written but the message is handed back
    assert handle(event, world.engine)["batchItemFailures"]
    assert list(world.records()) == ["outbox"]
    assert world.marker("incoming/outbox.json") is None  # the outbox is open: no marker yet
    assert world.notifications() == []
    # WHEN SNS recovers and SQS delivers the message again
    world.sns.meta.events.unregister("before-call.sns.Publish", outage)
    assert handle(event, world.engine) == {"batchItemFailures": []}
    # THEN the notification goes out once, the outbox is closed, and there is still one row
    assert len(world.notifications()) == 1
    marker = world.marker("incoming/outbox.json")
    assert marker is not None
    assert (marker["status"], marker["item_pk"], marker["notified"]) == ("processed", "outbox", True)
    assert list(world.records()) == ["outbox"]
    # AND a third delivery sends nothing more
    handle(event, world.engine)
    assert world.notifications() == []


def test_a_crash_between_write_and_publish_is_finished_by_the_next_delivery(world: World) -> None:
    # GIVEN a container that died after the ledger write: the item is there, unnotified
    world.put("incoming/crash.json", '{"id": "crash"}')
    event = world.event("incoming/crash.json")
    dying = world.build_engine()

    def die(**_: Any) -> None:
        raise SystemExit("killed")  # not an Exception: nothing in dockline may swallow it

    world.sns.meta.events.register("before-call.sns.Publish", die)
    with pytest.raises(SystemExit):
        handle(event, dying)
    assert list(world.records()) == ["crash"]
    assert world.marker("incoming/crash.json") is None  # the outbox is open: no marker yet
    # WHEN Lambda retries the event in a new container
    world.sns.meta.events.unregister("before-call.sns.Publish", die)
    handle(event, world.build_engine())
    # THEN one notification, one row, and the outbox closed on the file's marker
    assert len(world.notifications()) == 1
    assert list(world.records()) == ["crash"]
    marker = world.marker("incoming/crash.json")
    assert marker is not None
    assert marker["notified"] is True


def test_same_id_and_content_from_another_file_is_a_silent_duplicate(world: World) -> None:
    world.put("incoming/a.json", '{"id": "x", "n": 1}')
    handle(world.event("incoming/a.json"), world.engine)
    world.notifications()
    world.put("incoming/b.json", '{"n": 1, "id": "x"}')
    [summary] = handle(world.event("incoming/b.json"), world.engine)["files"]
    assert summary["status"] == "duplicate"
    assert list(world.records()) == ["x"]
    assert world.notifications() == []
    # AND the duplicate is recorded on a file marker
    marker = world.marker("incoming/b.json")
    assert marker is not None
    assert marker["status"] == "duplicate"


def test_same_id_other_content_is_a_conflict_first_kept_recorded_and_notified(world: World) -> None:
    world.put("incoming/a.json", '{"id": "x", "n": 1}')
    handle(world.event("incoming/a.json"), world.engine)
    world.notifications()
    world.put("incoming/b.json", '{"id": "x", "n": 2}')
    [summary] = handle(world.event("incoming/b.json"), world.engine)["files"]
    assert summary["status"] == "conflict"
    assert world.records()["x"]["payload"]["n"] == 1
    [note] = world.notifications()
    assert note["attributes"]["status"] == "conflict"
    assert "incoming/a.json" in note["message"]
    marker = world.marker("incoming/b.json")
    assert marker is not None
    assert marker["status"] == "conflict"
    # AND a re-delivery of the conflicting file is not notified again
    handle(world.event("incoming/b.json"), world.engine)
    assert world.notifications() == []


def test_overwrite_policy_orders_events_by_sequencer_even_out_of_order(moto: None) -> None:
    # GIVEN on_conflict = overwrite and a versioned bucket, so old versions stay readable
    world = World(PipelineSettings(on_conflict=ConflictPolicy.OVERWRITE, retries=2))
    world.s3.put_bucket_versioning(Bucket=world.bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = world.s3.put_object(Bucket=world.bucket, Key="incoming/p.json", Body=b'{"id": "p", "v": 1}')["VersionId"]
    v2 = world.s3.put_object(Bucket=world.bucket, Key="incoming/p.json", Body=b'{"id": "p", "v": 2}')["VersionId"]

    def event(version: str, sequencer: str) -> dict[str, Any]:
        return {"Records": [s3_record(world.bucket, "incoming/p.json", version_id=version, sequencer=sequencer)]}

    # WHEN the newer event arrives first, then the older one
    handle(event(v2, "0055AED6DCD90281E6"), world.engine)
    [late] = handle(event(v1, "0055AED6DCD90281E5"), world.engine)["files"]
    # THEN the older one never overwrites the newer
    assert world.records()["p"]["payload"]["v"] == 2
    assert late["status"] == "conflict"
    # AND a newer one still does
    v3 = world.s3.put_object(Bucket=world.bucket, Key="incoming/p.json", Body=b'{"id": "p", "v": 3}')["VersionId"]
    [newest] = handle(event(v3, "0055AED6DCD90281E7"), world.engine)["files"]
    assert newest["status"] == "processed"
    assert world.records()["p"]["payload"]["v"] == 3


def test_why15_an_older_event_for_an_overwritten_unversioned_object_is_superseded(world: World) -> None:
    # Was `failed`, with a failure notification and a dead letter (issue 8, item 15).
    old = world.put("incoming/r.json", '{"id": "r", "v": 1}')
    new = world.put("incoming/r.json", '{"id": "r", "v": 2}')
    handle(world.event("incoming/r.json"), world.engine)
    [late] = handle(world.event("incoming/r.json", etag=old), world.engine)["files"]
    assert late["status"] == "superseded"
    assert late["reason"] == f"object was replaced by a newer version ({new}) before it could be read"
    assert world.records()["r"]["payload"]["v"] == 2
    assert [n["attributes"]["status"] for n in world.notifications()] == ["processed"]
    assert world.dead_letter_bodies() == []


def test_a_fixed_file_reuploaded_under_the_same_key_is_processed(world: World) -> None:
    world.put("incoming/fix.json", '{"id": "fix", ')
    handle(world.drain_input(), world.engine)
    world.put("incoming/fix.json", '{"id": "fix", "ok": true}')
    handle(world.drain_input(), world.engine)
    assert world.records()["fix"]["payload"] == {"id": "fix", "ok": True}
    assert [n["attributes"]["status"] for n in world.notifications()] == ["failed", "processed"]


def test_the_last_receive_settles_as_failed_with_a_reason_instead_of_a_raw_dlq_event(moto: None) -> None:
    # GIVEN the handler knows the queue's maxReceiveCount, and the table stays throttled
    world = World()
    world.engine = world.build_engine(max_receive_count=5)
    world.put("incoming/late.json", '{"id": "late"}')
    [record] = world.drain_input()["Records"]
    fault = Fault("ThrottlingException", 400, when=for_item("late"))
    world.dynamodb.meta.events.register("before-parameter-build.dynamodb.PutItem", fault)
    # WHEN it is received for the 4th time: handed back; the 5th and last time: settled
    record["attributes"]["ApproximateReceiveCount"] = "4"
    assert handle({"Records": [record]}, world.engine)["batchItemFailures"]
    record["attributes"]["ApproximateReceiveCount"] = "5"
    assert handle({"Records": [record]}, world.engine) == {"batchItemFailures": []}
    # THEN the file is failed with a reason, notified and dead-lettered by the handler
    [marker] = world.markers().values()
    assert marker["status"] == "failed"
    assert marker["error"].startswith("gave up after 5 attempts: writing the item (DynamoDB table events) failed")
    [letter] = world.dead_letter_bodies()
    assert letter["attempts"] == 5
    [note] = world.notifications()
    assert note["attributes"]["status"] == "failed"


def test_per_record_file_resumed_after_a_crash_has_no_duplicates(moto: None) -> None:
    # GIVEN a 120-record file whose second transaction fails until the retry budget runs out
    world = World(PipelineSettings(retries=1))
    lines = "".join(json.dumps({"id": f"r{i}", "v": i}) + "\n" for i in range(1, 121))
    world.put("incoming/resume.ndjson", lines)
    event = world.event("incoming/resume.ndjson")
    first = [True]
    fault = Fault("InternalServerError", 500, when=lambda _params: not (first and first.pop()))
    world.dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", fault)
    with pytest.raises(TransientError):
        handle(event, world.engine)
    assert len(world.records()) == 100
    world.dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", fault)
    # WHEN it is delivered again
    [summary] = handle(event, world.engine)["files"]
    # THEN all 120 records are there once, and one notification went out
    assert summary["status"] == "processed"
    assert summary["records"] == 120
    assert len(world.records()) == 120
    assert len(world.notifications()) == 1
