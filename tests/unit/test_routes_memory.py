"""Issue 9 item 4: items carry their route, notifications a route attribute (memory ledger)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dockline.memory import MemoryDeadLetters, MemoryLedger, MemoryStore, MemoryTopic
from dockline.models import ObjectRef
from dockline.pipeline import Pipeline
from tests.unit.routes_corpus import FILES, comparable, expected, settings


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
    }
