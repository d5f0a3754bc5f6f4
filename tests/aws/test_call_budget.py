"""AWS API calls per file, counted with a botocore ``before-call`` hook on every client.

Targets (issue 5): a one-document file costs at most 4 calls; a file of N records at
most 4 + ceil(N/25). GetObject counts.
"""

from __future__ import annotations

import json
import math

import pytest

from dockline.aws.handler import handle
from tests.aws.world import World


@pytest.fixture
def world(moto: None) -> World:
    return World()


def test_a_one_document_file_costs_exactly_get_put_publish_update(world: World) -> None:
    world.put("incoming/one.json", '{"id": "one", "price": 19.99}')
    event = world.event("incoming/one.json")
    world.calls.reset()
    handle(event, world.engine)
    assert world.calls.calls == ["s3.GetObject", "dynamodb.PutItem", "sns.Publish", "dynamodb.UpdateItem"]


def test_a_redelivered_document_costs_two_calls_and_sends_nothing(world: World) -> None:
    world.put("incoming/one.json", '{"id": "one"}')
    event = world.event("incoming/one.json")
    handle(event, world.engine)
    world.calls.reset()
    handle(event, world.engine)
    assert world.calls.calls == ["s3.GetObject", "dynamodb.PutItem"]


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
