"""Issue 11's rule "nothing lost, nothing doubled" for the Lambda metrics: a small file's
redelivery (SQS and S3 deliver at least once) is logged ``file already settled`` and counts
no ``FilesProcessed`` / ``FilesFailed`` / ``RecordsWritten`` again, on the per-file path and
in an SQS batch (the core's batch path), as a big file's redelivery already did.

The DynamoDB ledger claims small files lazily (no read before the write), so the signal is
the write that settles: the document put or the file marker put is refused by the item a
first delivery left, and that item says the version was settled and announced.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any, cast

import pytest

from dockline.aws import handler
from dockline.aws.handler import handle
from tests.aws.world import Fault, World


@pytest.fixture
def world(moto: None) -> World:
    return World()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The handler's structured log lines (Powertools' logger, through logging's setStream)."""
    buffer = io.StringIO()
    stream_handler = cast(logging.StreamHandler, handler.logger.registered_handler)  # type: ignore[type-arg]
    previous = stream_handler.setStream(buffer)
    try:
        yield buffer
    finally:
        stream_handler.setStream(previous)


def _metrics(out: str) -> dict[str, float]:
    """The EMF metrics the handler printed, summed by name."""
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        blob = json.loads(line)
        for definition in blob["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                name = metric["Name"]
                totals[name] = totals.get(name, 0.0) + sum(blob[name])
    return totals


def _lines(logs: io.StringIO, message: str) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in logs.getvalue().splitlines() if line.strip()]
    return [entry for entry in found if entry["message"] == message]


def _fresh(logs: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    logs.seek(0)
    logs.truncate()
    capsys.readouterr()


@pytest.mark.parametrize(
    ("key", "body", "records"),
    [
        ("incoming/one.json", '{"id": "one", "price": 19.99}', 1),
        ("incoming/few.ndjson", '{"id": "f1"}\n{"id": "f2"}\n{"id": "f3"}\n', 3),
        ("incoming/bad.json", '{"id": ', 0),
    ],
    ids=["document", "small-per-record", "failed"],
)
def test_item1_a_redelivered_small_file_counts_no_file_and_no_record_again(
    world: World, logs: io.StringIO, capsys: pytest.CaptureFixture[str], key: str, body: str, records: int
) -> None:
    # GIVEN a small file delivered and settled once, counted once
    world.put(key, body)
    event = world.event(key)
    _fresh(logs, capsys)
    handle(event, world.engine)
    first = _metrics(capsys.readouterr().out)
    counted = "FilesFailed" if records == 0 else "FilesProcessed"
    assert first.get(counted) == 1.0
    assert first.get("RecordsWritten", 0.0) == records
    world.notifications()
    _fresh(logs, capsys)
    # WHEN the same event arrives again
    handle(event, world.engine)
    # THEN the dashboards' counts are not inflated: no file and no record is counted again
    again = _metrics(capsys.readouterr().out)
    assert not {"FilesProcessed", "FilesFailed", "RecordsWritten"} & set(again), again
    # AND the redelivery is logged as such, with the state it settled in; nothing is sent again
    [line] = _lines(logs, "file already settled")
    assert (line["key"], line["status"]) == (key, "failed" if records == 0 else "processed")
    assert _lines(logs, "file settled") == []
    assert world.notifications() == []


def test_item1_redeliveries_in_an_sqs_batch_of_ten_count_only_the_new_files(
    world: World, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN four small files settled in one SQS batch: two documents, a per-record file, a bad one
    world.put("incoming/old-0.json", '{"id": "old0"}')
    world.put("incoming/old-1.json", '{"id": "old1"}')
    world.put("incoming/old-2.ndjson", '{"id": "r1"}\n{"id": "r2"}\n')
    world.put("incoming/old-bad.json", "{")
    first = world.drain_input()
    assert len(first["Records"]) == 4
    _fresh(logs, capsys)
    assert handle(first, world.engine) == {"batchItemFailures": []}
    counted = _metrics(capsys.readouterr().out)
    assert (counted["FilesProcessed"], counted["FilesFailed"], counted["RecordsWritten"]) == (3.0, 1.0, 4.0)
    world.notifications()
    # WHEN SQS delivers those four messages again in a batch of ten with six new documents
    for n in range(6):
        world.put(f"incoming/new-{n}.json", json.dumps({"id": f"new{n}"}))
    new = world.drain_input()
    event = {"Records": [*first["Records"], *new["Records"]]}
    assert len(event["Records"]) == 10
    _fresh(logs, capsys)
    result = handle(event, world.engine)
    # THEN only the six new files are counted, each once, with their six records
    assert result == {"batchItemFailures": []}
    metrics = _metrics(capsys.readouterr().out)
    assert metrics.get("FilesProcessed") == 6.0, metrics
    assert metrics.get("RecordsWritten") == 6.0, metrics
    assert "FilesFailed" not in metrics, metrics
    # AND each redelivery is logged as already settled, each new file as settled
    again = {line["key"]: line["status"] for line in _lines(logs, "file already settled")}
    assert again == {
        "incoming/old-0.json": "processed",
        "incoming/old-1.json": "processed",
        "incoming/old-2.ndjson": "processed",
        "incoming/old-bad.json": "failed",
    }
    assert sorted(line["key"] for line in _lines(logs, "file settled")) == [f"incoming/new-{n}.json" for n in range(6)]
    # AND only the new files are announced
    notes = world.notifications()
    assert sorted(n["attributes"]["key"] for n in notes) == [f"incoming/new-{n}.json" for n in range(6)]


def test_item1_a_redelivery_whose_notification_was_still_owed_is_counted_once_by_the_attempt_that_sends_it(
    world: World, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a document written by a container that died before publishing (nothing was counted)
    world.put("incoming/late.json", '{"id": "late"}')
    event = world.event("incoming/late.json")
    dying = world.build_engine()

    def die(**_: Any) -> None:
        raise SystemExit("container killed")

    world.sns.meta.events.register("before-call.sns.Publish", die)
    with pytest.raises(SystemExit):
        handle(event, dying)
    world.sns.meta.events.unregister("before-call.sns.Publish", die)
    _fresh(logs, capsys)
    # WHEN the event is redelivered to a healthy container
    handle(event, world.build_engine())
    # THEN this attempt finishes the file's work and counts it, once: it is not "already settled"
    metrics = _metrics(capsys.readouterr().out)
    assert (metrics.get("FilesProcessed"), metrics.get("RecordsWritten")) == (1.0, 1.0)
    assert _lines(logs, "file already settled") == []
    assert len(world.notifications()) == 1


def test_item1_files_whose_outbox_a_failing_batch_closed_are_counted_once_by_the_same_delivery(
    world: World, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an SQS batch of four documents and a bad file, and DynamoDB refusing every
    # UpdateItem (the bad file's outbox flag) while the documents' markers go in fine
    for n in range(4):
        world.put(f"incoming/d{n}.json", json.dumps({"id": f"d{n}"}))
    world.put("incoming/broken.json", "{")
    event = world.drain_input()
    world.dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", Fault("InternalServerError", 500))
    _fresh(logs, capsys)
    # WHEN the batch is handled: its last step fails after the documents' outboxes closed, so
    # the core takes each file again on its own
    result = handle(event, world.engine)
    # THEN the documents are this delivery's work, counted once each, not "already settled";
    # the bad file, whose outbox could not close, is handed back uncounted
    metrics = _metrics(capsys.readouterr().out)
    assert (metrics.get("FilesProcessed"), metrics.get("RecordsWritten")) == (4.0, 4.0), metrics
    assert "FilesFailed" not in metrics
    assert _lines(logs, "file already settled") == []
    assert len(result["batchItemFailures"]) == 1
    notes = world.notifications()
    processed = sorted(n["attributes"]["key"] for n in notes if n["attributes"]["status"] == "processed")
    assert processed == [f"incoming/d{n}.json" for n in range(4)]
