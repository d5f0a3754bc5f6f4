"""Crash safety, the outbox and transient faults on the local engine (issue 4, sections 3, 4, 6, 8).

A real ``kill -9`` of ``dockline run --once`` in a subprocess, then crashes placed
exactly between the ledger write, the dead letter and the publish (in-process, by
wrapping a port so it dies at that point), then transient faults that are retried.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest

from dockline.errors import PermanentError, TransientError
from dockline.local.engine import LocalEngine
from dockline.models import ConflictPolicy, DeadLetter, Notification, ObjectRef, Outcome, Record, WriteReport
from dockline.ports import DeadLetters, Ledger, Notifier, ObjectStore
from dockline.retry import RetryPolicy
from tests.local.conftest import (
    SlowWebhook,
    bucket_digest,
    cli_command,
    cli_env,
    drop,
    files_by_key,
    items,
    letters,
    messages,
    run_cli,
    settings,
    the_file,
    write_config,
)

FINAL = {"processed", "failed", "duplicate", "conflict"}


class SimulatedCrash(BaseException):
    """Stands for the process dying at this exact point: nothing after it runs.

    A BaseException, like SystemExit, so no ``except Exception`` in dockline catches it.
    """


# -- kill -9 in the middle of a batch ----------------------------------------------------
def settled_count(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
        try:
            return int(
                conn.execute(
                    "SELECT count(*) FROM files WHERE status IN ('processed', 'failed') AND notified = 1"
                ).fetchone()[0]
            )
        finally:
            conn.close()
    except sqlite3.Error:
        return 0  # the schema is not there yet


def test_kill_9_mid_batch_loses_nothing_and_doubles_nothing(
    tmp_path: Path, data_dir: Path, slow_webhook: Callable[[float], SlowWebhook]
) -> None:
    # GIVEN 1,200 files (every 12th one broken) and a webhook subscription (its deliveries are
    # an outbox too); group commit settles files ~50 ms at a time, so many files give the
    # kill a moment when some are settled and others are not
    workers = 2
    total = 1200
    hook = slow_webhook(0.001)
    config = write_config(
        tmp_path / "dockline.toml", f'[[local.subscriptions]]\ntype = "webhook"\nurl = "{hook.url}"\n'
    )
    good, broken = set(), set()
    for i in range(total):
        key = f"incoming/batch/f{i:04d}.json"
        if i % 12 == 5:
            drop(data_dir, key, f'{{"id": "broken-{i}", "truncated": [')
            broken.add(key)
        else:
            drop(data_dir, key, {"id": f"doc-{i}", "n": i, "price": "19.99"})
            good.add(key)
    before = bucket_digest(data_dir / "bucket")

    # WHEN `run --once --workers 2` is killed with SIGKILL once some files are settled
    proc = subprocess.Popen(
        cli_command(data_dir, "run", "--once", "--quiet", "--workers", str(workers), config=config),
        cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while settled_count(data_dir / "dockline.db") < 30 and time.monotonic() < deadline:
            assert proc.poll() is None, "the run finished before it could be killed"
            time.sleep(0.005)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    settled_at_kill = settled_count(data_dir / "dockline.db")
    assert 30 <= settled_at_kill < total, "the kill must land mid-batch"

    # ... and the run is started again
    again = run_cli(data_dir, "run", "--once", "--quiet", "--workers", str(workers), config=config)
    assert again.returncode == 0, again.stderr

    # THEN every file is in exactly one final state
    rows = json.loads(run_cli(data_dir, "files", "list", "--all", "--json").stdout)
    by_key = Counter(row["key"] for row in rows)
    assert set(by_key) == good | broken
    assert max(by_key.values()) == 1
    status = {row["key"]: row["status"] for row in rows}
    assert {status[k] for k in good} == {"processed"}
    assert {status[k] for k in broken} == {"failed"}
    assert all(row["notified"] for row in rows)
    # ... one ledger item per good file, none twice
    ledger = json.loads(run_cli(data_dir, "ledger", "list", "--all", "--json").stdout)
    assert len(ledger) == len(good)
    assert {item["key"] for item in ledger} == good
    # ... one dead letter per broken file
    dlq = json.loads(run_cli(data_dir, "dlq", "list", "--json").stdout)
    assert sorted(letter["key"] for letter in dlq) == sorted(broken)
    # ... at least one notification each; extra ones only for files that were in flight
    notes = json.loads(run_cli(data_dir, "notifications", "list", "--json").stdout)
    per_key = Counter(n["attributes"]["key"] for n in notes)
    assert set(per_key) == good | broken
    doubled = {k: n for k, n in per_key.items() if n > 1}
    assert len(doubled) <= workers and max(per_key.values()) <= 2, doubled
    # ... and no user file was changed or deleted
    assert bucket_digest(data_dir / "bucket") == before


# -- the outbox: crashes between the ledger write and the publish ------------------------
class CrashingNotifier(Notifier):
    """Dies on the first ``crashes`` publishes, then delegates."""

    def __init__(self, inner: Notifier, *, crashes: int = 1, error: BaseException | None = None) -> None:
        self.inner, self.crashes, self.error = inner, crashes, error

    def publish(self, notification: Notification) -> None:
        if self.crashes:
            self.crashes -= 1
            raise self.error or SimulatedCrash("died before publishing")
        self.inner.publish(notification)


class CrashingDeadLetters(DeadLetters):
    def __init__(self, inner: DeadLetters) -> None:
        self.inner = inner

    def send(self, letter: DeadLetter) -> None:
        raise SimulatedCrash("died before the dead letter was sent")

    def list(self) -> Iterator[DeadLetter]:
        return self.inner.list()

    def remove(self, letter_id: str) -> None:
        self.inner.remove(letter_id)


class LedgerWrapper(Ledger):
    """Delegates every call; subclasses break one of them."""

    def __init__(self, inner: Ledger) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def begin(self, ref: ObjectRef, *, now: str) -> Outcome | None:
        self.calls["begin"] += 1
        return self.inner.begin(ref, now=now)

    def write(self, ref: ObjectRef, records: Sequence[Record], *, policy: ConflictPolicy, now: str) -> WriteReport:
        self.calls["write"] += 1
        return self.inner.write(ref, records, policy=policy, now=now)

    def settle(self, outcome: Outcome, *, now: str) -> bool:
        self.calls["settle"] += 1
        return self.inner.settle(outcome, now=now)

    def mark_notified(self, outcome: Outcome) -> None:
        self.calls["mark_notified"] += 1
        self.inner.mark_notified(outcome)

    def discard(self, ref: ObjectRef) -> None:
        self.calls["discard"] += 1
        self.inner.discard(ref)

    def reopen(self, ref: ObjectRef, *, now: str) -> bool:
        self.calls["reopen"] += 1
        return self.inner.reopen(ref, now=now)


def crashed_engine(make_engine: Callable[..., LocalEngine]) -> LocalEngine:
    # The crashed "process" shares this test's pid, so its leases must not outlive it.
    return make_engine(settings(lease_seconds=0.0))


def test_crash_between_settle_and_publish_publishes_once_on_restart(
    make_engine: Callable[..., LocalEngine],
) -> None:
    # GIVEN a run that dies right after the ledger settled the file, before publishing
    first = crashed_engine(make_engine)
    drop(first, "incoming/a.json", {"id": "a-1"})
    first.pipeline.notifier = CrashingNotifier(first.topic)
    with pytest.raises(SimulatedCrash):
        first.run_once()
    row = the_file(first, "incoming/a.json")
    assert (row["status"], row["notified"]) == ("processed", False)  # owed: the outbox
    assert messages(first) == []
    # WHEN the engine restarts and runs, twice
    second = make_engine()
    second.run_once()
    second.run_once()
    # THEN the notification went out exactly once, and there is still one row
    assert [m["subject"] for m in messages(second)] == ["S3 Event Processed"]
    assert list(items(second)) == ["a-1"]
    assert the_file(second, "incoming/a.json")["notified"] is True


def test_crash_before_the_dead_letter_still_dead_letters_on_restart(
    make_engine: Callable[..., LocalEngine],
) -> None:
    # GIVEN a broken file whose run dies after settling it as failed, before the dead letter
    first = crashed_engine(make_engine)
    drop(first, "incoming/bad.json", "{not json")
    first.pipeline.dead_letters = CrashingDeadLetters(first.dead_letters)
    with pytest.raises(SimulatedCrash):
        first.run_once()
    assert the_file(first, "incoming/bad.json")["status"] == "failed"
    assert letters(first) == []
    # WHEN the engine restarts and runs, twice
    second = make_engine()
    second.run_once()
    second.run_once()
    # THEN the file has its dead letter and one failure notification
    assert [letter.key for letter in (x.ref for x in letters(second))] == ["incoming/bad.json"]
    assert [m["attributes"]["status"] for m in messages(second)] == ["failed"]
    assert len(files_by_key(second)["incoming/bad.json"]) == 1


def test_crash_after_publish_before_mark_notified_duplicates_only_that_notification(
    make_engine: Callable[..., LocalEngine],
) -> None:
    # GIVEN a run that dies after publishing, before recording that it did
    class DiesAtMarkNotified(LedgerWrapper):
        def mark_notified(self, outcome: Outcome) -> None:
            raise SimulatedCrash("died before mark_notified")

    first = crashed_engine(make_engine)
    drop(first, "incoming/a.json", {"id": "a-1"})
    first.pipeline.ledger = DiesAtMarkNotified(first.ledger)
    with pytest.raises(SimulatedCrash):
        first.run_once()
    # WHEN the engine restarts and runs
    second = make_engine()
    second.run_once()
    second.run_once()
    # THEN notifications are at least once (this file twice), the ledger row once
    assert [m["subject"] for m in messages(second)] == ["S3 Event Processed"] * 2
    assert list(items(second)) == ["a-1"]
    assert len(files_by_key(second)["incoming/a.json"]) == 1


def test_a_topic_that_is_down_leaves_the_notification_owed_not_a_failure(engine: LocalEngine) -> None:
    # GIVEN a topic that keeps failing transiently (retries run out)
    drop(engine, "incoming/a.json", {"id": "a-1"})
    engine.pipeline.notifier = CrashingNotifier(engine.topic, crashes=10**6, error=TransientError("topic is down"))
    # WHEN the engine runs
    summary = engine.run_once()
    # THEN the file stays processed (its row was written), owed a notification:
    # no dead letter, no "failed" message, and the run says what is pending
    row = the_file(engine, "incoming/a.json")
    assert (row["status"], row["notified"], row["error"]) == ("processed", False, None)
    assert letters(engine) == []
    assert messages(engine) == []
    assert any("topic is down" in e for e in summary.errors), summary.errors
    # WHEN the topic is back
    engine.pipeline.notifier = engine.topic
    engine.run_once()
    # THEN exactly one "processed" notification goes out
    assert [m["subject"] for m in messages(engine)] == ["S3 Event Processed"]
    assert the_file(engine, "incoming/a.json")["status"] == "processed"


# -- transient faults: retried with backoff; permanent ones are not ----------------------
class FlakyStore(ObjectStore):
    """Raises ``error`` on the first ``failures`` opens, then delegates."""

    def __init__(self, inner: ObjectStore, *, failures: int, error: Exception) -> None:
        self.inner, self.failures, self.error = inner, failures, error
        self.opens = 0

    @contextmanager
    def _open(self, ref: ObjectRef) -> Iterator[BinaryIO]:
        self.opens += 1
        if self.opens <= self.failures:
            raise self.error
        with self.inner.open(ref) as body:
            yield body

    def open(self, ref: ObjectRef) -> AbstractContextManager[BinaryIO]:
        return self._open(ref)


def test_transient_store_errors_are_retried_with_backoff(engine: LocalEngine) -> None:
    # GIVEN a store that times out twice, and a retry policy that records its sleeps
    drop(engine, "incoming/a.json", {"id": "a-1"})
    sleeps: list[float] = []
    engine.pipeline.retry = RetryPolicy(attempts=4, base_seconds=0.2, sleep=sleeps.append, rand=lambda: 1.0)
    flaky = FlakyStore(engine.store, failures=2, error=TransientError("read timed out"))
    engine.pipeline.store = flaky
    # WHEN the engine runs
    engine.run_once()
    # THEN the third attempt succeeds after exponential backoff; one row, one notification
    assert flaky.opens == 3
    assert sleeps == [0.2, 0.4]
    assert the_file(engine, "incoming/a.json")["status"] == "processed"
    assert list(items(engine)) == ["a-1"]
    assert len(messages(engine)) == 1


def test_transient_ledger_errors_are_retried_without_a_second_row(engine: LocalEngine) -> None:
    # GIVEN a ledger whose writes hit a busy database twice (after the rows went in once)
    class BusyAfterWrite(LedgerWrapper):
        def write(self, ref: ObjectRef, records: Sequence[Record], *, policy: ConflictPolicy, now: str) -> WriteReport:
            report = super().write(ref, records, policy=policy, now=now)
            if self.calls["write"] <= 2:
                raise TransientError("the ledger database is busy")
            return report

    drop(engine, "incoming/a.jsonl", '{"id": "r-1"}\n{"id": "r-2"}\n')
    ledger = BusyAfterWrite(engine.ledger)
    engine.pipeline.ledger = ledger
    # WHEN the engine runs
    engine.run_once()
    # THEN the file is processed with each record once, notified once
    assert ledger.calls["write"] == 3
    row = the_file(engine, "incoming/a.jsonl")
    assert (row["status"], row["records"]) == ("processed", 2)
    assert sorted(items(engine)) == ["r-1", "r-2"]
    assert len(messages(engine)) == 1


def test_transient_errors_forever_give_up_and_dead_letter(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN a store that always times out and a budget of 3 attempts
    engine = make_engine(retries=3)
    drop(engine, "incoming/a.json", {"id": "a-1"})
    drop(engine, "incoming/b.json", {"id": "b-1"})
    flaky = FlakyStore(engine.store, failures=3, error=TransientError("read timed out"))
    engine.pipeline.store = flaky
    # WHEN the engine runs (a.json takes all three failures)
    engine.run_once(workers=1)
    # THEN it failed, saying it gave up after 3 attempts, and was dead-lettered; b.json went on
    row = the_file(engine, "incoming/a.json")
    assert row["status"] == "failed"
    assert row["error"] == "gave up after 3 attempts: read timed out"
    assert row["attempts"] == 3
    dead = letters(engine, "incoming/a.json")
    assert len(dead) == 1 and dead[0].attempts == 3 and dead[0].reason == row["error"]
    assert [m["attributes"]["status"] for m in messages(engine, "incoming/a.json")] == ["failed"]
    assert the_file(engine, "incoming/b.json")["status"] == "processed"


def test_permanent_errors_are_not_retried(engine: LocalEngine) -> None:
    # GIVEN a store that refuses the object for good
    drop(engine, "incoming/a.json", {"id": "a-1"})
    flaky = FlakyStore(engine.store, failures=10, error=PermanentError("permission denied reading incoming/a.json"))
    engine.pipeline.store = flaky
    # WHEN the engine runs
    engine.run_once()
    # THEN one attempt only, failed with that reason, dead-lettered
    assert flaky.opens == 1
    row = the_file(engine, "incoming/a.json")
    assert (row["status"], row["error"], row["attempts"]) == (
        "failed", "permission denied reading incoming/a.json", 1
    )
    assert len(letters(engine)) == 1


def test_a_file_deleted_before_processing_fails_as_gone(engine: LocalEngine) -> None:
    # GIVEN a file seen by the scan, then deleted before a worker reads it
    path = drop(engine, "incoming/a.json", {"id": "a-1"})
    refs = engine.scan().ready
    path.unlink()
    # WHEN it is processed
    summary = engine.process(refs, workers=1)
    # THEN it failed as "object no longer exists"
    assert [o.error for o in summary.outcomes] == ["object no longer exists"]
    assert the_file(engine, "incoming/a.json")["status"] == "failed"


def test_sqlite_file_survives_and_state_is_kept_across_restarts(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN a processed file
    first = make_engine()
    drop(first, "incoming/a.json", {"id": "a-1"})
    first.run_once()
    first.db.close()
    # WHEN a new engine opens the same data dir and runs
    second = make_engine()
    summary = second.run_once()
    # THEN nothing is processed again
    assert summary.outcomes == []
    assert len(messages(second)) == 1 and list(items(second)) == ["a-1"]
