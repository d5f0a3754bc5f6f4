"""The core lifecycle on the in-memory adapters: settled, retry or busy, and who gives up.

Issue 8, "What to build" 1, 4, 5 and 11: one lifecycle for every engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from dockline.config import PipelineSettings
from dockline.errors import BusyError, SupersededError, TransientError
from dockline.lifecycle import Lifecycle, Step, Work
from dockline.memory import MemoryDeadLetters, MemoryLedger, MemoryStore, MemoryTopic
from dockline.models import ConflictPolicy, DeadLetter, Notification, ObjectRef, Outcome, Record, Status, WriteReport
from dockline.pipeline import Pipeline
from dockline.redrive import execute, plan
from dockline.retry import RetryPolicy

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FlakyTopic(MemoryTopic):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def publish(self, notification: Notification) -> None:
        if self.down:
            raise TransientError("topic is down")
        super().publish(notification)


class FailingLedger(MemoryLedger):
    """Fails ``write`` after ``ok_batches`` batches: transiently, or with a bug."""

    def __init__(self) -> None:
        super().__init__()
        self.ok_batches = 10**9
        self.fail: Exception = TransientError("throttled")
        self.busy = False

    def begin(self, ref: ObjectRef, *, now: str) -> Outcome | None:
        if self.busy:
            raise BusyError(f"{ref.key} is being processed by someone else")
        return super().begin(ref, now=now)

    def write(self, ref: ObjectRef, records: Sequence[Record], *, policy: ConflictPolicy, now: str) -> WriteReport:
        if self.ok_batches <= 0:
            raise self.fail
        self.ok_batches -= 1
        return super().write(ref, records, policy=policy, now=now)


class GoneStore(MemoryStore):
    def __init__(self, newer: str | None) -> None:
        super().__init__()
        self.newer = newer

    def open(self, ref: ObjectRef):  # type: ignore[no-untyped-def]
        raise SupersededError("replaced by a newer version before it could be read", newer=self.newer)


def parts(
    *, store: MemoryStore | None = None, batch_size: int = 2
) -> tuple[Lifecycle, MemoryStore, FailingLedger, FlakyTopic, MemoryDeadLetters]:
    store = store or MemoryStore()
    ledger, topic, letters = FailingLedger(), FlakyTopic(), MemoryDeadLetters()
    pipeline = Pipeline(
        settings=PipelineSettings(batch_size=batch_size),
        store=store,
        ledger=ledger,
        notifier=topic,
        dead_letters=letters,
        clock=lambda: NOW,
        retry=RetryPolicy(attempts=2, sleep=lambda _s: None),
    )
    return Lifecycle(pipeline), store, ledger, topic, letters


def lines(*documents: str) -> bytes:
    return "\n".join(documents).encode() + b"\n"


def test_a_good_file_is_settled() -> None:
    life, store, _, topic, _ = parts()
    store.put("b", "incoming/a.json", b'{"id": "a"}')
    result = life.run(Work(ObjectRef("b", "incoming/a.json", "v1")))
    assert result.step is Step.SETTLED
    assert result.outcome is not None and result.outcome.status is Status.PROCESSED
    assert len(topic.messages) == 1


def test_a_held_file_is_busy_and_left_alone() -> None:
    life, store, ledger, topic, letters = parts()
    store.put("b", "incoming/a.json", b'{"id": "a"}')
    ledger.busy = True
    result = life.run(Work(ObjectRef("b", "incoming/a.json", "v1"), give_up_after=3))
    assert result.step is Step.BUSY
    assert "someone else" in result.reason
    assert topic.messages == [] and letters.letters == {}


def test_out_of_retries_is_handed_back_when_the_engine_retries_later() -> None:
    life, store, ledger, _, letters = parts()
    store.put("b", "incoming/a.json", b'{"id": "a"}')
    ledger.ok_batches = 0
    result = life.run(Work(ObjectRef("b", "incoming/a.json", "v1"), give_up_after=None))
    assert result.step is Step.RETRY
    assert result.reason == "throttled"
    assert letters.letters == {}
    assert ledger.files[("b", "incoming/a.json", "v1")].status is Status.PROCESSING


def test_why4_giving_up_settles_failed_and_takes_back_what_was_written() -> None:
    # GIVEN a five-line file whose third batch keeps failing
    life, store, ledger, topic, letters = parts(batch_size=2)
    store.put("b", "incoming/f.jsonl", lines(*(f'{{"id": "r{i}"}}' for i in range(1, 6))))
    ledger.ok_batches = 2
    # WHEN the engine says this was the last attempt
    result = life.run(Work(ObjectRef("b", "incoming/f.jsonl", "v1"), attempt=5, give_up_after=5))
    # THEN the file is failed, saying so, with a letter and a notification...
    assert result.step is Step.SETTLED and result.outcome is not None
    assert result.outcome.status is Status.FAILED
    assert result.outcome.error == "gave up after 5 attempts: throttled"
    assert list(letters.letters) == ["b/incoming/f.jsonl@v1"]
    assert [m.attributes["status"] for m in topic.messages] == ["failed"]
    # ...and none of the four records written before the failure is left
    assert ledger.items == {}


def test_why4_a_bad_line_after_the_first_batches_leaves_no_items() -> None:
    life, store, ledger, _, _ = parts(batch_size=2)
    store.put("b", "incoming/f.jsonl", lines('{"id": "r1"}', '{"id": "r2"}', '{"id": "r3"}', '{"id": "r4"}', "{oops"))
    result = life.run(Work(ObjectRef("b", "incoming/f.jsonl", "v1")))
    assert result.outcome is not None and result.outcome.status is Status.FAILED
    assert "line 5" in (result.outcome.error or "")
    assert ledger.items == {}


def test_a_settled_file_whose_notification_failed_is_never_turned_into_a_failure() -> None:
    # GIVEN a file that settles while the topic is down
    life, store, ledger, topic, letters = parts()
    store.put("b", "incoming/a.json", b'{"id": "a"}')
    topic.down = True
    ref = ObjectRef("b", "incoming/a.json", "v1")
    # WHEN it is processed on its last attempt
    result = life.run(Work(ref, give_up_after=3))
    # THEN it is handed back, not given up on: its state stands, only the message is owed
    assert result.step is Step.RETRY
    assert result.reason.startswith("processed, but its notification is not sent yet")
    assert ledger.files[("b", "incoming/a.json", "v1")].status is Status.PROCESSED
    assert letters.letters == {}
    # AND the next delivery sends exactly that notification
    topic.down = False
    again = life.run(Work(ref))
    assert again.outcome is not None and again.outcome.status is Status.PROCESSED
    assert [m.attributes["status"] for m in topic.messages] == ["processed"]


def test_a_bug_in_one_file_is_a_retry_with_its_reason_not_a_crash() -> None:
    life, store, ledger, _, _ = parts()
    store.put("b", "incoming/a.json", b'{"id": "a"}')
    ledger.ok_batches = 0
    ledger.fail = KeyError("boom")
    result = life.run(Work(ObjectRef("b", "incoming/a.json", "v1"), give_up_after=3))
    assert result.step is Step.RETRY
    assert result.unexpected is True
    assert result.reason == "internal error: KeyError: 'boom'"


def test_why15_a_replaced_version_is_superseded_quietly() -> None:
    life, _, ledger, topic, letters = parts(store=GoneStore(newer="v2"))
    result = life.run(Work(ObjectRef("b", "incoming/a.json", "v1"), give_up_after=3))
    assert result.step is Step.SETTLED and result.outcome is not None
    assert result.outcome.status is Status.SUPERSEDED
    assert result.outcome.error == "replaced by a newer version before it could be read (now v2)"
    assert topic.messages == [] and letters.letters == {}  # nobody is paged
    assert ledger.files[("b", "incoming/a.json", "v1")].status is Status.SUPERSEDED


def test_why9_a_processed_version_resolves_the_letters_of_earlier_versions() -> None:
    # GIVEN a half-written first version that failed and was dead-lettered
    life, store, _, _, letters = parts()
    store.put("b", "incoming/a.json", b'{"id": "a", ')
    first = life.run(Work(ObjectRef("b", "incoming/a.json", "v1")))
    assert first.outcome is not None and first.outcome.status is Status.FAILED
    assert list(letters.letters) == ["b/incoming/a.json@v1"]
    # WHEN the whole file is processed as its next version
    store.put("b", "incoming/a.json", b'{"id": "a", "done": true}')
    life.run(Work(ObjectRef("b", "incoming/a.json", "v2")))
    # THEN the stale letter is gone
    assert letters.letters == {}


def test_redrive_plans_and_executes_through_the_lifecycle() -> None:
    life, store, ledger, _, letters = parts()
    store.put("b", "incoming/a.json", b'{"id": "a", ')
    ref = ObjectRef("b", "incoming/a.json", "v1")
    life.run(Work(ref))
    [letter] = list(letters.list())
    # GIVEN the object was fixed in place (same version name, to exercise reopen)
    store.put("b", "incoming/a.json", b'{"id": "a"}')
    steps = plan([letter], None, lambda _letter: (ref, ""))
    assert [s.action for s in steps] == ["reprocess (unchanged)"]
    [done] = list(execute(steps, life, now=lambda: "2026-12-01T12:00:00.000Z"))
    assert done.resolved is True
    assert done.outcome is not None and done.outcome.status is Status.PROCESSED
    assert done.outcome.attempts == 2
    assert "a" in ledger.items


def test_redrive_keeps_a_letter_whose_object_fails_again() -> None:
    life, store, _, _, letters = parts()
    store.put("b", "incoming/a.json", b"[1]")
    ref = ObjectRef("b", "incoming/a.json", "v1")
    life.run(Work(ref))
    letter: DeadLetter = next(letters.list())
    [done] = list(execute(plan([letter], None, lambda _l: (ref, "")), life, now=lambda: "t"))
    assert done.outcome is not None and done.outcome.status is Status.FAILED
    assert done.resolved is False


def test_a_file_that_fails_before_its_first_write_skips_the_discard() -> None:
    # A discard can cost a scan of a big ledger (SQLite keys items by pk, not by file):
    # it runs only when this attempt handed records to the ledger.
    life, store, ledger, _, _ = parts(batch_size=2)
    calls: list[str] = []
    original = ledger.discard

    def counting(ref: ObjectRef) -> None:
        calls.append(ref.key)
        original(ref)

    ledger.discard = counting  # type: ignore[method-assign]
    store.put("b", "incoming/bad.json", b'{"id": ')
    store.put("b", "incoming/late.jsonl", lines('{"id": "r1"}', '{"id": "r2"}', "{oops"))
    life.run(Work(ObjectRef("b", "incoming/bad.json", "v1")))
    life.run(Work(ObjectRef("b", "incoming/late.jsonl", "v1")))
    assert calls == ["incoming/late.jsonl"]
    assert ledger.items == {}
