"""The Lambda handler end to end on moto: S3 -> handler -> DynamoDB -> SNS (+ DLQ)."""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal
from typing import Any, cast

import pytest

from dockline.aws import handler
from dockline.aws.handler import handle, lambda_handler
from dockline.errors import ConfigError
from tests.aws.test_events import sample
from tests.aws.world import World


@pytest.fixture
def world(moto: None) -> World:
    return World()


def test_keys_with_space_plus_equals_and_unicode_end_to_end(world: World) -> None:
    # GIVEN documents without an id under awkward keys, delivered by S3 through SQS
    keys = ["incoming/red flower.json", "incoming/a+b.json", "incoming/x=1/y=2.json", "incoming/café ☃/ü.json"]
    for key in keys:
        world.put(key, json.dumps({"name": key}))
    event = world.drain_input()
    # WHEN the handler runs
    result = handle(event, world.engine)
    # THEN every file is processed: pk is the decoded key, and one notification names it
    assert result == {"batchItemFailures": []}
    records = world.records()
    assert sorted(records) == sorted(keys)
    assert all(records[k]["payload"] == {"name": k} and records[k]["key"] == k for k in keys)
    notes = world.notifications()
    assert sorted(n["message"] for n in notes) == sorted(f"New file processed: {k}" for k in keys)
    assert {n["subject"] for n in notes} == {"S3 Event Processed"}
    assert all(
        n["attributes"]["status"] == "processed" and n["attributes"]["pk"] == n["attributes"]["key"] for n in notes
    )


def test_numbers_are_stored_exactly_as_decimals(world: World) -> None:
    world.put("incoming/prices.json", '{"id": "p", "a": 19.99, "b": 0.1, "c": 1e-7, "d": 1.10, "e": 3}')
    handle(world.event("incoming/prices.json"), world.engine)
    payload = world.records()["p"]["payload"]
    assert payload == {
        "id": "p",
        "a": Decimal("19.99"),
        "b": Decimal("0.1"),
        "c": Decimal("1e-7"),
        "d": Decimal("1.10"),
        "e": 3,
    }
    assert all(type(v) is Decimal for k, v in payload.items() if k != "id")


def test_integer_id_becomes_its_decimal_string(world: World) -> None:
    world.put("incoming/seventeen.json", '{"id": 17, "x": 1}')
    handle(world.event("incoming/seventeen.json"), world.engine)
    assert list(world.records()) == ["17"]
    [note] = world.notifications()
    assert note["attributes"]["pk"] == "17"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ('{"id": true}', "id must be a non-empty string or an integer, not bool"),
        ('{"id": 1.5}', "id must be a non-empty string or an integer, not a decimal number"),
        ('{"id": ""}', "id is empty"),
        ('{"id": "' + "x" * 1025 + '"}', "id is 1,025 bytes long; the limit is 1,024 bytes"),
        ("[1, 2]", "the document is an array, not a JSON object"),
        ('"just a string"', "the document is a string, not a JSON object"),
        ("", "the file is empty"),
        ('{"id": ', "truncated JSON"),
    ],
)
def test_bad_files_are_failed_recorded_notified_and_dead_lettered(world: World, document: str, reason: str) -> None:
    # GIVEN a file with bad content
    world.put("incoming/bad.json", document)
    # WHEN it is delivered directly
    result = handle(world.event("incoming/bad.json"), world.engine)
    # THEN the invocation succeeds (no pointless retry) with the file failed, with a reason
    [summary] = result["files"]
    assert summary["status"] == "failed"
    assert reason in summary["reason"]
    # AND the ledger has no record item, but a failed marker with the reason
    assert world.records() == {}
    [marker] = world.markers().values()
    assert marker["status"] == "failed"
    assert reason in marker["error"]
    assert marker["notified"] is True
    # AND one failure notification, and one dead letter naming the object
    [note] = world.notifications()
    assert note["subject"] == "S3 Event Failed"
    assert note["attributes"]["status"] == "failed"
    assert reason in note["message"]
    [letter] = world.dead_letter_bodies()
    assert letter["key"] == "incoming/bad.json"
    assert reason in letter["reason"]


def test_one_bad_record_never_aborts_the_others(world: World) -> None:
    world.put("incoming/good-1.json", '{"id": "g1"}')
    world.put("incoming/bad.json", "{oops")
    world.put("incoming/good-2.json", '{"id": "g2"}')
    result = handle(world.event("incoming/good-1.json", "incoming/bad.json", "incoming/good-2.json"), world.engine)
    assert [f["status"] for f in result["files"]] == ["processed", "failed", "processed"]
    assert sorted(world.records()) == ["g1", "g2"]


def test_a_600_kb_document_is_stored_as_a_reference_and_marked_oversized(world: World) -> None:
    body = json.dumps({"id": "huge", "blob": "y" * 600_000})
    etag = world.put("incoming/huge.json", body)
    handle(world.event("incoming/huge.json"), world.engine)
    stored = world.records()["huge"]
    assert "payload" not in stored
    assert stored["oversized"] is True
    assert stored["payload_ref"] == f"s3://{world.bucket}/incoming/huge.json?etag={etag}"
    assert len(stored["content_hash"]) == 64
    [note] = world.notifications()
    assert note["subject"] == "S3 Event Processed"


def test_an_object_deleted_before_processing_fails_as_no_longer_exists(world: World) -> None:
    world.put("incoming/gone.json", '{"id": "gone"}')
    event = world.event("incoming/gone.json")
    world.s3.delete_object(Bucket=world.bucket, Key="incoming/gone.json")
    [summary] = handle(event, world.engine)["files"]
    assert summary["status"] == "failed"
    assert summary["reason"] == "object no longer exists"
    [note] = world.notifications()
    assert note["message"] == "File failed: incoming/gone.json: object no longer exists"


def test_s3_test_event_does_nothing(world: World) -> None:
    world.calls.reset()
    assert handle(sample("s3_test_event.json"), world.engine) == {"files": []}
    assert world.calls.calls == []


def test_sns_wrapped_event(world: World) -> None:
    event = sample("sns_s3_event.json")
    key = "incoming/ünïcødé/€uro ☃.json"
    etag = world.put(key, '{"id": "sns-1"}')
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["Records"][0]["s3"]["bucket"]["name"] = world.bucket
    message["Records"][0]["s3"]["object"]["eTag"] = etag
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    [summary] = handle(event, world.engine)["files"]
    assert summary["status"] == "processed"
    assert summary["key"] == key


def test_sqs_batch_with_a_test_event_and_malformed_messages(world: World) -> None:
    # GIVEN a real S3 event, a TestEvent and two malformed messages in one batch
    world.put("incoming/ok.json", '{"id": "ok"}')
    good = world.drain_input()["Records"]
    junk = sample("sqs_malformed.json")["Records"]
    test_event = sample("sqs_s3_events.json")["Records"][1]
    result = handle({"Records": [*good, test_event, *junk]}, world.engine)
    # THEN the file is processed, the TestEvent acknowledged, and only the malformed
    # messages are handed back (the queue's redrive policy moves them to the DLQ)
    assert result == {"batchItemFailures": [{"itemIdentifier": m["messageId"]} for m in junk]}
    assert list(world.records()) == ["ok"]


def test_duplicate_delivery_gives_no_second_row_and_no_second_notification(world: World) -> None:
    world.put("incoming/once.json", '{"id": "once"}')
    event = world.event("incoming/once.json")
    handle(event, world.engine)
    handle(event, world.engine)
    handle(world.event("incoming/once.json", sequencer="0055AED6DCD90281E9"), world.engine)
    assert list(world.records()) == ["once"]
    assert len(world.markers()) == 1  # the version's outbox, closed once
    assert len(world.notifications()) == 1


def test_metrics_are_emitted_as_emf(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.put("incoming/m.ndjson", '{"id": "m1"}\n{"id": "m2"}\n')
    world.put("incoming/bad.json", "nope")
    capsys.readouterr()
    handle(world.event("incoming/m.ndjson", "incoming/bad.json"), world.engine)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    [emf] = blobs
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Dockline"
    assert emf["service"] == "dockline"
    assert emf["FilesProcessed"] == [1.0]
    assert emf["FilesFailed"] == [1.0]
    assert emf["RecordsWritten"] == [2.0]


def test_a_redelivered_big_file_counts_no_file_and_no_record_again(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a big per-record file (over 1 MiB: a redelivery reads its marker first, and the
    # core knows it settled before) processed once; SQS and S3 deliver at least once
    pad = "x" * 4000
    world.put("incoming/again.ndjson", "".join(f'{{"id": "a{i}", "pad": "{pad}"}}\n' for i in range(270)))
    event = world.event("incoming/again.ndjson")
    handle(event, world.engine)
    capsys.readouterr()
    # WHEN the same event arrives again
    handle(event, world.engine)
    # THEN the dashboards' counts are not inflated: no FilesProcessed, no RecordsWritten
    out = capsys.readouterr().out
    blobs = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    assert all("FilesProcessed" not in b and "RecordsWritten" not in b for b in blobs), blobs


def test_each_file_is_logged_as_structured_json(world: World) -> None:
    # GIVEN the Powertools logger writing into a buffer (logging's public setStream)
    world.put("incoming/log.json", '{"id": "L"}')
    world.put("incoming/log-bad.json", "[]")
    buffer = io.StringIO()
    stream_handler = cast(logging.StreamHandler, handler.logger.registered_handler)  # type: ignore[type-arg]
    previous = stream_handler.setStream(buffer)
    try:
        handle(world.event("incoming/log.json", "incoming/log-bad.json"), world.engine)
    finally:
        stream_handler.setStream(previous)
    # THEN each file has one JSON line with its key, status, pk and (when failed) reason
    logs = [json.loads(line) for line in buffer.getvalue().splitlines()]
    good, bad = [entry for entry in logs if entry["message"] == "file settled"]
    assert (good["key"], good["status"], good["pk"], good["service"]) == (
        "incoming/log.json",
        "processed",
        "L",
        "dockline",
    )
    assert (bad["key"], bad["status"], bad["level"]) == ("incoming/log-bad.json", "failed", "WARNING")
    assert bad["reason"].startswith("the document is an array, not a JSON object")


# -- the real entry point, configured by the environment ---------------------------------
@pytest.fixture
def fresh_engine() -> Any:
    handler.reset_engine()
    yield
    handler.reset_engine()


def test_lambda_handler_builds_its_engine_from_the_environment_once(
    world: World, monkeypatch: pytest.MonkeyPatch, fresh_engine: None
) -> None:
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    world.put("incoming/env.json", '{"id": "env"}')
    event = world.drain_input()
    assert lambda_handler(event, None) == {"batchItemFailures": []}
    engine = handler.current_engine()
    world.put("incoming/env-2.json", '{"id": "env-2"}')
    lambda_handler(world.drain_input(), None)
    assert handler.current_engine() is engine
    assert sorted(world.records()) == ["env", "env-2"]


def test_lambda_handler_without_table_name_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, fresh_engine: None
) -> None:
    monkeypatch.delenv("TABLE_NAME", raising=False)
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t")
    with pytest.raises(ConfigError, match="TABLE_NAME is not set"):
        lambda_handler({"Records": []}, None)


def test_dockline_overrides_from_the_environment_reach_the_pipeline(
    world: World, monkeypatch: pytest.MonkeyPatch, fresh_engine: None
) -> None:
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DOCKLINE_PREFIX", "landing/")
    world.put("landing/x.json", '{"id": "x"}')
    world.put("incoming/y.json", '{"id": "y"}')
    world.drain_input()
    lambda_handler(
        {"Records": world.event("landing/x.json")["Records"] + world.event("incoming/y.json")["Records"]}, None
    )
    assert list(world.records()) == ["x"]


def test_files_are_handed_back_rather_than_started_when_time_runs_out(world: World) -> None:
    # GIVEN an SQS batch and a context with less than the safety margin left
    world.put("incoming/late-1.json", '{"id": "l1"}')
    world.put("incoming/late-2.json", '{"id": "l2"}')
    event = world.drain_input()

    class AlmostOut:
        aws_request_id = "req-1"

        def get_remaining_time_in_millis(self) -> int:
            return handler.SAFETY_MARGIN_MS - 1

    # WHEN handled THEN no file is started and every message goes back to the queue
    result = handle(event, world.engine, context=AlmostOut())
    assert result == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
    assert world.raw_items() == []
