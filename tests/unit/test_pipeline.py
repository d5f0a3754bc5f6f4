"""The processing core on the in-memory adapters: statuses, notifications, retries, dead letters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dockline.config import PipelineSettings
from dockline.errors import TransientError
from dockline.memory import MemoryDeadLetters, MemoryLedger, MemoryStore, MemoryTopic
from dockline.models import ObjectRef, Status
from dockline.pipeline import SUBJECT_FAILED, SUBJECT_PROCESSED, Pipeline
from dockline.retry import RetryPolicy

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Parts:
    def __init__(self, **settings: object) -> None:
        self.store, self.ledger, self.topic, self.letters = (
            MemoryStore(),
            MemoryLedger(),
            MemoryTopic(),
            MemoryDeadLetters(),
        )
        self.sleeps: list[float] = []
        self.pipeline = Pipeline(
            settings=PipelineSettings(**settings),  # type: ignore[arg-type]
            store=self.store,
            ledger=self.ledger,
            notifier=self.topic,
            dead_letters=self.letters,
            clock=lambda: NOW,
            retry=RetryPolicy(attempts=3, sleep=self.sleeps.append, rand=lambda: 1.0),
        )

    def run(self, key: str, body: bytes, version: str = "v1"):  # type: ignore[no-untyped-def]
        self.store.put("b", key, body)
        return self.pipeline.process(ObjectRef("b", key, version))


def test_processed_file_gets_the_seed_subject_and_filterable_attributes() -> None:
    parts = Parts()
    outcome = parts.run("incoming/red flower.json", b'{"id": 17, "price": 19.99}')
    assert (outcome.status, outcome.pk, outcome.records, outcome.notified) == (Status.PROCESSED, "17", 1, True)
    [note] = parts.topic.messages
    assert note.subject == SUBJECT_PROCESSED
    assert note.message == "New file processed: incoming/red flower.json"
    assert dict(note.attributes) == {
        "status": "processed",
        "key": "incoming/red flower.json",
        "bucket": "b",
        "pk": "17",
        "route": "default",  # issue 9: every notification names its route ([pipeline] alone is "default")
    }


def test_bad_file_is_failed_notified_and_dead_lettered_once() -> None:
    parts = Parts()
    outcome = parts.run("incoming/bad.json", b'{"id": "x", ')
    assert outcome.status is Status.FAILED and outcome.error and outcome.error.startswith("truncated JSON")
    [note] = parts.topic.messages
    assert note.subject == SUBJECT_FAILED
    assert note.message == f"File failed: incoming/bad.json: {outcome.error}"
    assert note.attributes["status"] == "failed" and "pk" not in note.attributes  # SNS refuses empty values
    [letter] = parts.letters.letters.values()
    assert (letter.ref.key, letter.reason, letter.attempts) == ("incoming/bad.json", outcome.error, 1)
    # a re-delivery changes nothing
    again = parts.pipeline.process(ObjectRef("b", "incoming/bad.json", "v1"))
    assert again.status is Status.FAILED and len(parts.topic.messages) == 1 and len(parts.letters.letters) == 1


def test_per_record_summary_counts_written_duplicates_and_skipped() -> None:
    parts = Parts(on_bad_record="skip")
    parts.run("incoming/a.jsonl", b'{"id": "x"}\n')
    outcome = parts.run("incoming/b.jsonl", b'{"id": "x"}\n{"id": "y"}\nnot json\n')
    assert (outcome.status, outcome.records, outcome.duplicates, outcome.skipped_total) == (Status.PROCESSED, 1, 1, 1)
    note = parts.topic.messages[-1]
    assert (
        note.message == "New file processed: incoming/b.jsonl (1 records written, 1 duplicates, 1 bad records skipped)"
    )
    assert note.attributes["records"] == "1"


class FlakyStore(MemoryStore):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def open(self, ref: ObjectRef):  # type: ignore[no-untyped-def]
        if self.failures:
            self.failures -= 1
            raise TransientError("S3 answered 503 Slow Down")
        return super().open(ref)


def test_transient_errors_are_retried_with_backoff_then_succeed() -> None:
    parts = Parts()
    parts.pipeline.store = parts.store = FlakyStore(failures=2)
    outcome = parts.run("incoming/a.json", b'{"id": "a"}')
    assert outcome.status is Status.PROCESSED
    assert parts.sleeps == [0.2, 0.4]  # full jitter with rand=1: the cap doubles each time


def test_retries_exhausted_raise_and_give_up_settles_failed() -> None:
    parts = Parts()
    parts.pipeline.store = parts.store = FlakyStore(failures=99)
    ref = ObjectRef("b", "incoming/a.json", "v1")
    parts.store.put("b", ref.key, b'{"id": "a"}')
    with pytest.raises(TransientError):
        parts.pipeline.process(ref)
    outcome = parts.pipeline.give_up(ref, "S3 answered 503 Slow Down", attempts=3)
    assert outcome.status is Status.FAILED
    assert outcome.error == "gave up after 3 attempts: S3 answered 503 Slow Down"
    assert [m.attributes["status"] for m in parts.topic.messages] == ["failed"]
    assert len(parts.letters.letters) == 1
