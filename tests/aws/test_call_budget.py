"""AWS API calls per file, counted with a botocore ``before-call`` hook on every client.

Targets (issue 5): a one-document file costs at most 4 calls; a file of N records at
most 4 + ceil(N/25). GetObject counts.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from dockline.aws.handler import handle
from dockline.aws.items import MARKER_PREFIX, item_size
from tests.aws.world import World


@pytest.fixture
def world(moto: None) -> World:
    return World()


def test_a_one_document_file_costs_exactly_get_put_publish_put_marker(world: World) -> None:
    world.put("incoming/one.json", '{"id": "one", "price": 19.99}')
    event = world.event("incoming/one.json")
    world.calls.reset()
    handle(event, world.engine)
    assert world.calls.calls == ["s3.GetObject", "dynamodb.PutItem", "sns.Publish", "dynamodb.PutItem"]


def test_the_outbox_of_a_big_document_is_closed_by_putting_a_tiny_marker_not_updating_the_item(
    world: World,
) -> None:
    # GIVEN a ~300 KB document: an UpdateItem on its item would be billed ~300 write units
    puts: list[dict[str, Any]] = []
    world.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.PutItem", lambda params, **_: puts.append(params["Item"])
    )
    world.put("incoming/big.json", json.dumps({"id": "big", "notes": "x" * 300_000}))
    event = world.event("incoming/big.json")
    world.calls.reset()
    # WHEN it is processed
    handle(event, world.engine)
    # THEN the outbox is closed with a PutItem, never an UpdateItem...
    assert world.calls.calls == ["s3.GetObject", "dynamodb.PutItem", "sns.Publish", "dynamodb.PutItem"]
    assert "dynamodb.UpdateItem" not in world.calls.calls
    # ...of the file's marker, which is tiny (~1 write unit) and says the notification went out
    document, marker = puts
    assert item_size(document) > 300_000
    assert marker["pk"]["S"].startswith(MARKER_PREFIX)
    assert item_size(marker) < 1024
    assert (marker["status"], marker["item_pk"], marker["notified"]) == (
        {"S": "processed"},
        {"S": "big"},
        {"BOOL": True},
    )
    # AND the document item carries no outbox flag at all
    assert "notified" not in document
    assert "notified" not in world.records()["big"]


def test_a_redelivered_document_reads_its_marker_and_sends_nothing(world: World) -> None:
    world.put("incoming/one.json", '{"id": "one"}')
    event = world.event("incoming/one.json")
    handle(event, world.engine)
    world.notifications()
    world.calls.reset()
    handle(event, world.engine)
    # the refused put shows the same version; only then is the marker read
    assert world.calls.calls == ["s3.GetObject", "dynamodb.PutItem", "dynamodb.GetItem"]
    assert world.notifications() == []


def test_a_redelivery_after_a_crash_before_the_publish_costs_five_calls_and_notifies_once(world: World) -> None:
    # GIVEN the item was written but the container died before publishing
    world.put("incoming/one.json", '{"id": "one"}')
    event = world.event("incoming/one.json")
    dying = world.build_engine()

    def die(**_: Any) -> None:
        raise SystemExit("killed")

    world.sns.meta.events.register("before-call.sns.Publish", die)
    with pytest.raises(SystemExit):
        handle(event, dying)
    world.sns.meta.events.unregister("before-call.sns.Publish", die)
    world.calls.reset()
    # WHEN the event is delivered again
    handle(event, world.build_engine())
    # THEN the marker is read (absent: still owed), the notification sent, the outbox closed
    assert world.calls.calls == [
        "s3.GetObject",
        "dynamodb.PutItem",
        "dynamodb.GetItem",
        "sns.Publish",
        "dynamodb.PutItem",
    ]
    assert len(world.notifications()) == 1
    assert list(world.records()) == ["one"]


# (moto copies the whole table for each transaction, so big files are slow here, not on AWS)
@pytest.mark.parametrize("records", [1, 25, 26, 60, 101, 250])
@pytest.mark.parametrize("writes", ["checked", "batch"])
def test_a_file_of_n_records_stays_within_4_plus_ceil_n_over_25(moto: None, records: int, writes: str) -> None:
    world = World(record_writes=writes)
    lines = "".join(json.dumps({"id": f"r{i}", "t": 20.5}) + "\n" for i in range(records))
    world.put("incoming/readings.ndjson", lines)
    event = world.event("incoming/readings.ndjson")
    world.calls.reset()
    [summary] = handle(event, world.engine)["files"]
    assert summary["records"] == records
    budget = 4 + math.ceil(records / 25)
    assert len(world.calls.calls) <= budget, world.calls.count()
    # AND the shape of the calls: one read, the writes, one marker, one publish, one outbox update
    # (a per-record file's marker is written before the publish and updated after it)
    count = world.calls.count()
    assert (count["s3.GetObject"], count["sns.Publish"], count["dynamodb.PutItem"], count["dynamodb.UpdateItem"]) == (
        1,
        1,
        1,
        1,
    )
    per_call = 100 if writes == "checked" else 25
    operation = "dynamodb.TransactWriteItems" if writes == "checked" else "dynamodb.BatchWriteItem"
    assert count[operation] == math.ceil(records / per_call)


def test_calls_for_failed_duplicate_and_conflicting_documents(world: World) -> None:
    world.put("incoming/first.json", '{"id": "x", "n": 1}')
    handle(world.event("incoming/first.json"), world.engine)
    expected = {
        "incoming/bad.json": (
            "{",
            ["s3.GetObject", "dynamodb.PutItem", "sqs.SendMessage", "sns.Publish", "dynamodb.UpdateItem"],
        ),
        "incoming/dup.json": ('{"id": "x", "n": 1}', ["s3.GetObject", "dynamodb.PutItem", "dynamodb.PutItem"]),
        "incoming/other.json": (
            '{"id": "x", "n": 2}',
            ["s3.GetObject", "dynamodb.PutItem", "dynamodb.PutItem", "sns.Publish", "dynamodb.UpdateItem"],
        ),
    }
    for key, (body, calls) in expected.items():
        world.put(key, body)
        event = world.event(key)
        world.calls.reset()
        handle(event, world.engine)
        assert world.calls.calls == calls, key
