"""Issue 9 on the AWS engine (moto): the same routes corpus gives the same items as
SQLite and memory, items carry a route attribute, SNS messages a route attribute."""

from __future__ import annotations

from pathlib import Path

from dockline.aws.handler import handle
from tests.aws.world import World
from tests.unit.routes_corpus import FILES, SHOP_KEY, SHOP_SKIPPED, comparable, expected, settings


def test_routes_corpus_on_dynamodb_gives_the_same_items_as_sqlite_and_memory(moto: None, tmp_path: Path) -> None:
    # GIVEN the routes corpus in the bucket
    world = World(settings(tmp_path).pipeline)
    for key, body in FILES.items():
        world.put(key, body)
    # WHEN S3 events for every key reach the handler
    result = handle(world.event(*FILES), world.engine)
    # THEN the key no route takes is skipped, the rest settle
    assert {f["key"]: f["status"] for f in result["files"]} == {k: "processed" for k in FILES if k[0] != "e"}
    # AND the DynamoDB items are the corpus's, each with its route attribute
    records = world.records()
    found = {pk: comparable(i["payload"], i["route"], i.get("record_index")) for pk, i in records.items()}
    assert found == expected()
    # AND each SNS message carries the route as a message attribute (for filter policies)
    notes = world.notifications()
    assert {n["attributes"]["key"]: n["attributes"]["route"] for n in notes} == {
        "AWSLogs/111/CloudTrail/eu-west-1/ct.json.gz": "cloudtrail",
        "iot/2026/air.csv": "sensors",
        "incoming/orders.jsonl": "orders",
        "plain/readings.jsonl": "plain",
        "shop/orders.jsonl": "shop",
    }
    assert world.marker("elsewhere/ignored.json") is None
    # AND the shop file's marker counts the record its transform dropped, and the bad one
    shop = world.marker(SHOP_KEY)
    assert shop is not None
    assert (shop["records"], shop["dropped"], shop["skipped_count"]) == (3, 1, 1)
    assert shop["skipped"][0]["reason"] == SHOP_SKIPPED
    assert any(n["attributes"]["key"] == SHOP_KEY and n["attributes"]["dropped"] == "1" for n in notes)
