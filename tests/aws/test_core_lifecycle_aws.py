"""Issue 8 on the AWS engine (moto): the same lifecycle and ledger rule as locally.

Each test names the numbered problem of issue 8's "Why" it proves fixed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockline.aws.handler import handle
from dockline.config import PipelineSettings
from dockline.errors import SupersededError
from dockline.models import ObjectRef
from tests.aws.world import World


def jsonl(*documents: object) -> str:
    return "".join(json.dumps(d) + "\n" for d in documents)


@pytest.fixture
def world(moto: None) -> World:
    return World(PipelineSettings(retries=3, batch_size=2))


def test_why4_a_failed_multi_record_file_leaves_no_items_on_dynamodb(world: World) -> None:
    # GIVEN records written 2 at a time, and a bad line after two batches
    world.put("incoming/orders.jsonl", jsonl(*({"id": f"o{i}"} for i in range(1, 6))) + "{oops\n")
    # WHEN the handler runs
    result = handle(world.drain_input(), world.engine)
    # THEN the file is failed, and none of its records is left in the table
    assert result == {"batchItemFailures": []}
    marker = world.marker("incoming/orders.jsonl")
    assert marker is not None and marker["status"] == "failed"
    assert world.records() == {}
    # AND a corrected re-upload is processed, not a conflict
    world.put("incoming/orders.jsonl", jsonl(*({"id": f"o{i}", "fixed": True} for i in range(1, 6))))
    handle(world.drain_input(), world.engine)
    assert sorted(world.records()) == [f"o{i}" for i in range(1, 6)]
    assert all(item["payload"]["fixed"] is True for item in world.records().values())


def test_why14_one_id_twice_in_a_jsonl_file_is_a_conflict_on_dynamodb_too(world: World) -> None:
    world.put("incoming/twice.jsonl", jsonl({"id": "x", "v": 1}, {"id": "y"}, {"id": "x", "v": 2}))
    handle(world.drain_input(), world.engine)
    marker = world.marker("incoming/twice.jsonl")
    assert marker is not None and marker["status"] == "conflict"
    assert "line 3" in marker["error"]
    assert world.records()["x"]["payload"]["v"] == 1


def test_why14_numbers_compare_by_value_on_dynamodb(world: World) -> None:
    world.put("incoming/a.json", '{"id": "p", "p": 26}')
    handle(world.drain_input(), world.engine)
    world.put("incoming/b.json", '{"id": "p", "p": 26.0}')
    handle(world.drain_input(), world.engine)
    marker = world.marker("incoming/b.json")
    assert marker is not None and marker["status"] == "duplicate"


class ReplacedStore:
    """An S3Store whose object version was replaced before it could be read."""

    def __init__(self, newer: str) -> None:
        self.newer = newer

    def open(self, ref: ObjectRef) -> Any:
        raise SupersededError("object was replaced by a newer version before it could be read", newer=self.newer)

    def content_sha256(self, ref: ObjectRef) -> None:
        return None


def test_why15_a_replaced_version_is_superseded_without_paging_anyone(world: World) -> None:
    # GIVEN an event for a version that was replaced before the function read it
    world.put("incoming/a.json", '{"id": "a"}')
    event = world.drain_input()
    world.engine.pipeline.store = ReplacedStore(newer="v2")  # type: ignore[assignment]
    # WHEN the handler runs
    result = handle(event, world.engine)
    # THEN the delivery succeeds, the version is recorded as superseded (naming the newer one)...
    assert result == {"batchItemFailures": []}
    marker = world.marker("incoming/a.json")
    assert marker is not None and marker["status"] == "superseded"
    assert marker["error"].endswith("(now v2)")
    # ...with no failure notification and no dead letter (so no DLQ alarm)
    assert world.notifications() == []
    assert world.dead_letter_bodies() == []
    # AND a re-delivery changes nothing
    assert handle(event, world.engine) == {"batchItemFailures": []}
    assert world.notifications() == []
