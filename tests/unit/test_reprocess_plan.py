"""Reprocess in the core (issue 10, item 6): the selection, the plan, and what the pipeline
says about a reprocessed file -- on the in-memory adapters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dockline.config import PipelineSettings
from dockline.errors import UsageError
from dockline.lifecycle import Lifecycle, Step, Work
from dockline.memory import MemoryDeadLetters, MemoryLedger, MemoryStore, MemoryTopic
from dockline.models import BadRecordPolicy, ObjectRef, RecordMode, Status
from dockline.pipeline import SUBJECT_FAILED, SUBJECT_PROCESSED, Pipeline
from dockline.reprocess import Candidate, Selection, plan
from dockline.retry import RetryPolicy

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CSV = b"id,qty\na,1\nb,2\nc,x\n"


def pipeline(
    store: MemoryStore, ledger: MemoryLedger, topic: MemoryTopic, letters: MemoryDeadLetters, **s: object
) -> Pipeline:
    return Pipeline(
        settings=PipelineSettings(records=RecordMode.SPLIT, **s),  # type: ignore[arg-type]
        store=store,
        ledger=ledger,
        notifier=topic,
        dead_letters=letters,
        clock=lambda: NOW,
        retry=RetryPolicy(attempts=2, sleep=lambda _s: None),
    )


# -- the selection -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "--key PREFIX, --status S, --route R or --all"),  # --route arrived with routes (issue 9)
        ({"everything": True, "key_prefix": "incoming/"}, "leave out --key"),
        ({"statuses": (Status.PENDING,)}, "only settled files"),
    ],
)
def test_a_selection_must_say_which_settled_files(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(UsageError, match=words.replace("-", r"\-")):
        Selection(**kwargs)  # type: ignore[arg-type]


def test_key_and_status_both_filter_and_a_reopened_version_is_always_taken() -> None:
    selection = Selection(key_prefix="incoming/a", statuses=(Status.FAILED,))
    assert selection.matches("incoming/a1.csv", Status.FAILED)
    assert not selection.matches("incoming/a1.csv", Status.PROCESSED)
    assert not selection.matches("incoming/b.csv", Status.FAILED)
    assert selection.matches("incoming/a2.csv", Status.PENDING)  # left reopened by a crash
    assert Selection(everything=True).matches("anything", Status.CONFLICT)


def test_route_filters_too_and_combines_with_key_and_status() -> None:
    # GIVEN a selection by route (issue 9): the engine passes the route that takes each key
    selection = Selection(routes=("orders", "iot"), statuses=(Status.FAILED,))
    assert selection.matches("incoming/a.json", Status.FAILED, "orders")
    assert not selection.matches("incoming/a.json", Status.FAILED, "cloudtrail")
    assert not selection.matches("incoming/a.json", Status.PROCESSED, "orders")
    with pytest.raises(UsageError, match="leave out"):
        Selection(everything=True, routes=("orders",))


# -- the plan ----------------------------------------------------------------------------
def test_plan_runs_only_unchanged_objects_and_says_why_for_the_others() -> None:
    kept = Candidate(ObjectRef("b", "incoming/kept.csv", "v1"), Status.PROCESSED, 3)
    gone = Candidate(ObjectRef("b", "incoming/gone.csv", "v1"), Status.PROCESSED, 3)
    changed = Candidate(ObjectRef("b", "incoming/changed.csv", "v1"), Status.FAILED)
    resumed = Candidate(ObjectRef("b", "incoming/resumed.csv", "v1"), Status.PROCESSING)
    now = {
        "incoming/kept.csv": ObjectRef("b", "incoming/kept.csv", "v1", size=9),
        "incoming/changed.csv": ObjectRef("b", "incoming/changed.csv", "f00dfeedbeef" + "0" * 52),
        "incoming/resumed.csv": ObjectRef("b", "incoming/resumed.csv", "v1"),
    }
    steps = plan([kept, gone, changed, resumed], Selection(everything=True), lambda ref: now.get(ref.key))
    assert [(s.candidate.ref.key, s.ref is not None) for s in steps] == [
        ("incoming/kept.csv", True),
        ("incoming/gone.csv", False),
        ("incoming/changed.csv", False),
        ("incoming/resumed.csv", True),
    ]
    assert steps[0].ref == now["incoming/kept.csv"] and steps[0].action == "reprocess"
    assert steps[1].why == "its object is gone from the bucket; its items stay"
    assert "changed since (now f00dfeedbeef)" in steps[2].why and "items stay" in steps[2].why
    assert steps[3].action.startswith("resume")


# -- the pipeline ------------------------------------------------------------------------
def test_why_csv_schema_changed_a_reprocess_replaces_items_and_says_so() -> None:
    # GIVEN a CSV settled with strings, then csv_schema makes qty an int and bad rows skipped
    store, ledger, topic, letters = MemoryStore(), MemoryLedger(), MemoryTopic(), MemoryDeadLetters()
    store.put("b", "incoming/orders.csv", CSV)
    ref = ObjectRef("b", "incoming/orders.csv", "v1")
    assert pipeline(store, ledger, topic, letters).process(ref).status is Status.PROCESSED
    typed = pipeline(store, ledger, topic, letters, csv_schema={"qty": "int"}, on_bad_record=BadRecordPolicy.SKIP)
    # WHEN it is reprocessed (twice: idempotent)
    for _ in range(2):
        assert ledger.reprocess(ref, now="t") is True
        result = Lifecycle(typed).run(Work(ref))
        assert result.step is Step.SETTLED and result.outcome is not None
        # THEN the typed items replace the old ones, c (now skipped) is gone, no conflict
        assert result.outcome.status is Status.PROCESSED and result.outcome.reprocessed
        assert {pk: item.record.payload for pk, item in ledger.items.items()} == {
            "a": {"id": "a", "qty": 1},
            "b": {"id": "b", "qty": 2},
        }
    # AND each reprocess is announced with the same subject and reprocessed=true
    first, *again = topic.messages
    assert "reprocessed" not in first.attributes
    assert len(again) == 2
    for note in again:
        assert note.subject == SUBJECT_PROCESSED
        assert note.attributes["reprocessed"] == "true" and note.attributes["records"] == "2"
        assert note.message.startswith("File reprocessed: incoming/orders.csv (2 records written")


def test_a_failed_file_that_now_processes_loses_its_dead_letter_and_one_that_fails_is_announced() -> None:
    store, ledger, topic, letters = MemoryStore(), MemoryLedger(), MemoryTopic(), MemoryDeadLetters()
    store.put("b", "incoming/orders.csv", CSV)
    ref = ObjectRef("b", "incoming/orders.csv", "v1")
    strict = pipeline(store, ledger, topic, letters, csv_schema={"qty": "int"})
    assert strict.process(ref).status is Status.FAILED
    assert [letter.id for letter in letters.list()] == [ref.identity]
    # WHEN on_bad_record = skip lets it through and it is reprocessed
    lenient = pipeline(store, ledger, topic, letters, csv_schema={"qty": "int"}, on_bad_record=BadRecordPolicy.SKIP)
    assert ledger.reprocess(ref, now="t") is True
    assert lenient.process(ref).status is Status.PROCESSED
    # THEN its letter has done its job
    assert list(letters.list()) == []
    # AND a reprocess that fails is announced as such, with a letter again
    assert ledger.reprocess(ref, now="t") is True
    assert strict.process(ref).status is Status.FAILED
    last = topic.messages[-1]
    assert last.subject == SUBJECT_FAILED and last.attributes["reprocessed"] == "true"
    assert last.message.startswith("File failed on reprocess: incoming/orders.csv")
    assert ledger.items == {}
    assert [letter.id for letter in letters.list()] == [ref.identity]
