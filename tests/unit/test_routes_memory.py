"""Issue 9 item 4: items carry their route, notifications a route attribute (memory ledger)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dockline.memory import MemoryDeadLetters, MemoryLedger, MemoryStore, MemoryTopic
from dockline.models import ObjectRef
from dockline.pipeline import Pipeline
from tests.unit.routes_corpus import FILES, SHOP_KEY, SHOP_SKIPPED, comparable, expected, settings


def test_routes_corpus_on_memory_gives_the_expected_items_with_routes(tmp_path: Path) -> None:
    # GIVEN the routes corpus in a memory bucket
    config = settings(tmp_path)
    store, ledger, topic = MemoryStore(), MemoryLedger(), MemoryTopic()
    pipeline = Pipeline(
        settings=config.pipeline,
        store=store,
        ledger=ledger,
        notifier=topic,
        dead_letters=MemoryDeadLetters(),
        clock=lambda: datetime(2026, 12, 1, tzinfo=UTC),
    )
    # WHEN every key a route takes is processed
    for key, body in FILES.items():
        if config.pipeline.matches(key):
            store.put("b", key, body)
            pipeline.process(ObjectRef("b", key, "v1"))
    # THEN the items are the corpus's, each with its route
    found = {pk: comparable(i.record.payload, i.record.route, i.record.index) for pk, i in ledger.items.items()}
    assert found == expected()
    # AND each notification names its file's route
    assert {m.attributes["key"]: m.attributes["route"] for m in topic.messages} == {
        "AWSLogs/111/CloudTrail/eu-west-1/ct.json.gz": "cloudtrail",
        "iot/2026/air.csv": "sensors",
        "incoming/orders.jsonl": "orders",
        "plain/readings.jsonl": "plain",
        "shop/orders.jsonl": "shop",
    }
    # AND the shop file's transform dropped one record and made one bad, both counted
    shop = ledger.files[("b", SHOP_KEY, "v1")]
    assert (shop.records, shop.dropped, shop.skipped_total) == (3, 1, 1)
    assert [(b.index, b.reason) for b in shop.skipped] == [(3, SHOP_SKIPPED)]
    [note] = [m for m in topic.messages if m.attributes["key"] == SHOP_KEY]
    assert "1 dropped by the transform" in note.message and note.attributes["dropped"] == "1"
