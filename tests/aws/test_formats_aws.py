"""Record formats on the AWS engine: JSON Lines (gzip), CSV, a bad record, on moto."""

from __future__ import annotations

import gzip
from dataclasses import replace
from decimal import Decimal

import pytest

from dockline.aws.handler import handle
from dockline.config import PipelineSettings
from dockline.models import BadRecordPolicy
from tests.aws.world import World


@pytest.fixture
def world(moto: None) -> World:
    settings = replace(PipelineSettings(), csv_schema={"qty": "int", "price": "decimal"})
    return World(settings)


def test_gzipped_json_lines_and_csv_give_one_item_per_record_and_one_notification_per_file(world: World) -> None:
    # GIVEN a gzipped NDJSON object (records with and without ids) and a CSV object
    lines = b"".join(b'{"id": "r-%d", "temp": %d.25}\n' % (i, i) for i in range(60)) + b'{"temp": 1.5}\n'
    world.put("incoming/readings.ndjson.gz", gzip.compress(lines))
    world.put("incoming/orders.csv", "id,qty,price\nA,2,19.99\nB,1,5.10\n")
    # WHEN S3 delivers both through SQS and the handler runs
    result = handle(world.drain_input(), world.engine)
    # THEN every record is an item with exact numbers, keyed by id or key#line
    assert result == {"batchItemFailures": []}
    records = world.records()
    assert len(records) == 61 + 2
    assert records["r-7"]["payload"] == {"id": "r-7", "temp": Decimal("7.25")}
    assert records["incoming/readings.ndjson.gz#61"]["payload"] == {"temp": Decimal("1.5")}
    assert records["A"]["payload"] == {"id": "A", "qty": 2, "price": Decimal("19.99")}
    # AND one summary notification per file, never one per record
    notes = sorted(world.notifications(), key=lambda n: n["attributes"]["key"])
    assert [(n["attributes"]["key"], n["attributes"]["records"]) for n in notes] == [
        ("incoming/orders.csv", "2"),
        ("incoming/readings.ndjson.gz", "61"),
    ]


BAD_LINE_2 = '{"id": "a"}\n{"id": "b", "v": \n{"id": "c"}\n'


def test_a_bad_record_fails_the_file_by_default(moto: None) -> None:
    strict = World()
    strict.put("incoming/strict.jsonl", BAD_LINE_2)
    handle(strict.drain_input(), strict.engine)
    [failure] = strict.notifications()
    assert failure["attributes"]["status"] == "failed"
    assert "line 2, column 17: truncated JSON" in failure["message"]
    assert strict.records() == {}


def test_a_bad_record_is_skipped_and_counted_with_skip(moto: None) -> None:
    text = BAD_LINE_2
    lenient = World(replace(PipelineSettings(), on_bad_record=BadRecordPolicy.SKIP))
    lenient.put("incoming/lenient.jsonl", text)
    handle(lenient.drain_input(), lenient.engine)
    assert sorted(lenient.records()) == ["a", "c"]
    [note] = lenient.notifications()
    assert note["attributes"]["status"] == "processed"
    assert "2 records written, 1 bad records skipped" in note["message"]
