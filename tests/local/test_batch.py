"""Issue 11, item 1: small files go through the core in batches, each keeping its own outcome.

Real SQLite files and real ``dockline`` processes (kill -9, a tmpfs that fills up, two
processes on one bucket); the in-memory ports show that a port without batch methods goes
through the same core path, file by file.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dockline.config import PipelineSettings
from dockline.errors import TransientError
from dockline.lifecycle import Lifecycle, Step, Work
from dockline.local.engine import LocalEngine, RunSummary, batches
from dockline.local.ledger import SQLiteLedger
from dockline.memory import MemoryDeadLetters, MemoryLedger, MemoryStore, MemoryTopic
from dockline.models import ObjectRef, Outcome, Status
from dockline.pipeline import Pipeline
from dockline.retry import RetryPolicy
from tests.local._disks import fill as _fill
from tests.local._disks import small_tmpfs
from tests.local._procs import assert_each_once, dockline, one_line, peek, run, wait_for
from tests.local.conftest import drop, items, letters, messages, no_sleep_retry, settings

GOOD = [{"id": f"g-{i}", "n": i} for i in range(6)]
MIXED = {
    "incoming/a-good-0.json": GOOD[0],
    "incoming/a-good-1.json": GOOD[1],
    "incoming/b-bad.json": '{"id": "bad", "n": ',  # cut short: bad input
    "incoming/c-dup.json": GOOD[0],  # identical content under another key: duplicate
    "incoming/d-conflict.json": {"id": "g-1", "n": 99},  # g-1 with other content: conflict
    "incoming/e-good-2.json": GOOD[2],
    "incoming/f-lines.jsonl": "\n".join(json.dumps(g) for g in GOOD[3:]) + "\n",
    "incoming/g-twice.jsonl": '{"id": "t-1", "n": 1}\n{"id": "t-1", "n": 2}\n',  # the same id twice in one file
}


def _statements(engine: LocalEngine) -> list[str]:
    """Every SQL statement the engine's writer runs from now on (SQLite's own trace hook)."""
    seen: list[str] = []
    engine.db._writer_conn().set_trace_callback(seen.append)
    return seen


def _settled(engine: LocalEngine) -> dict[str, tuple[Any, ...]]:
    return {
        str(r["key"]): (r["status"], r["records"], r["duplicates"], r["conflicts"], r["error"], r["notified"])
        for r in engine.db.query("SELECT * FROM files")
    }


def _notes(engine: LocalEngine) -> list[tuple[str, str, str]]:
    return sorted((m["subject"], m["message"], json.dumps(m["attributes"], sort_keys=True)) for m in messages(engine))


def test_item1_a_batch_with_a_bad_file_a_duplicate_and_a_conflict_settles_each_file_on_its_own(
    tmp_path: Path,
) -> None:
    # GIVEN the same mixed corpus in two data dirs
    engines = []
    for name in ("batch", "single"):
        engine = LocalEngine(tmp_path / name, settings())
        engine.pipeline.retry = no_sleep_retry()
        for key, doc in MIXED.items():
            drop(engine, key, doc)
        engines.append(engine)
    batched, single = engines
    ready = batched.scan().ready
    assert batches(ready) == [ready]  # all small: one batch
    # WHEN one runs them as a batch and the other file by file, in the same order
    trace = _statements(batched)
    summary = batched.run_once(workers=1)
    alone = RunSummary()
    for ref in single.scan().ready:
        single.process_one(ref, alone)
    # THEN each file got its own outcome, as the per-file path gives it
    assert sorted((o.ref.key, o.status) for o in summary.outcomes) == sorted(
        (o.ref.key, o.status) for o in alone.outcomes
    )
    assert {o.ref.key: o.status for o in summary.outcomes} == {
        "incoming/a-good-0.json": Status.PROCESSED,
        "incoming/a-good-1.json": Status.PROCESSED,
        "incoming/b-bad.json": Status.FAILED,
        "incoming/c-dup.json": Status.DUPLICATE,
        "incoming/d-conflict.json": Status.CONFLICT,
        "incoming/e-good-2.json": Status.PROCESSED,
        "incoming/f-lines.jsonl": Status.PROCESSED,
        "incoming/g-twice.jsonl": Status.CONFLICT,
    }
    assert _settled(batched) == _settled(single)
    # AND the items are the per-file path's items (the first g-1 and t-1 kept)
    strip = ("processed_at", "received_at")  # the clock differs, nothing else
    assert {pk: {k: v for k, v in it.items() if k not in strip} for pk, it in items(batched).items()} == {
        pk: {k: v for k, v in it.items() if k not in strip} for pk, it in items(single).items()
    }
    assert items(batched)["g-1"]["payload"]["n"] == 1 and items(batched)["t-1"]["payload"]["n"] == 1
    # AND each file that owes a notification has exactly one, the same text; the bad file alone is dead-lettered
    assert _notes(batched) == _notes(single)
    keys = [m["attributes"]["key"] for m in messages(batched)]
    assert sorted(keys) == sorted(k for k in MIXED if k != "incoming/c-dup.json")  # a duplicate owes none
    assert [letter.ref.key for letter in letters(batched)] == ["incoming/b-bad.json"]
    # AND it was a batch: a handful of units (savepoints) for 8 files, not 6 per file
    units = sum(1 for s in trace if s.startswith("SAVEPOINT"))
    assert 0 < units <= 3, units
    for engine in engines:
        engine.db.close()


class _SettleRefused(SQLiteLedger):
    """A ledger whose batch settle always meets a busy database (the per-file settle works)."""

    calls = 0

    def settle_batch(self, outcomes: Sequence[Outcome], *, now: str) -> list[bool]:
        type(self).calls += 1
        raise TransientError("the ledger database is busy")


def test_item1_a_batch_statement_that_keeps_failing_rolls_back_and_each_file_goes_on_its_own(
    make_engine: Callable[..., LocalEngine],
) -> None:
    # GIVEN 20 small files and a ledger whose batch settle is always refused
    engine = make_engine()
    refused = _SettleRefused(engine.db, lease_seconds=300)
    engine.ledger = engine.pipeline.ledger = refused
    for i in range(20):
        drop(engine, f"incoming/o-{i:02d}.json", {"id": f"o-{i}"})
    trace = _statements(engine)
    # WHEN the engine runs
    summary = engine.run_once(workers=1)
    # THEN the batch was tried (with its retries), nothing of it stayed, and every file
    # settled through the per-file path: once, with its items and one notification
    assert _SettleRefused.calls == 4
    assert any(s.startswith("ROLLBACK TO unit") for s in trace)
    assert sorted(o.status for o in summary.outcomes) == [Status.PROCESSED] * 20
    assert len(items(engine)) == 20
    sent = [m["attributes"]["key"] for m in messages(engine)]
    assert sorted(sent) == sorted(f"incoming/o-{i:02d}.json" for i in range(20))
    assert engine.db.query("SELECT max(attempts) AS n FROM files")[0]["n"] == 1


def test_item1_ports_without_batch_methods_go_through_the_same_core_path() -> None:
    # GIVEN the in-memory ports (no batch overrides: the base classes go file by file)
    store, ledger, topic, dead = MemoryStore(), MemoryLedger(), MemoryTopic(), MemoryDeadLetters()
    pipeline = Pipeline(
        settings=PipelineSettings(),
        store=store,
        ledger=ledger,
        notifier=topic,
        dead_letters=dead,
        clock=lambda: datetime(2026, 12, 1, tzinfo=UTC),
        retry=RetryPolicy(attempts=2, sleep=lambda _s: None),
    )
    refs = []
    for key, doc in MIXED.items():
        store.put("b", key, (doc if isinstance(doc, str) else json.dumps(doc)).encode())
        refs.append(ObjectRef("b", key, "v1"))
    # WHEN the lifecycle runs them as one batch, twice (the second: a re-delivery)
    first = Lifecycle(pipeline).run_batch([Work(ref, give_up_after=2) for ref in refs])
    again = Lifecycle(pipeline).run_batch([Work(ref, attempt=2, give_up_after=2) for ref in refs])
    # THEN every file settled once, with its own outcome and at most one notification
    assert all(r.step is Step.SETTLED for r in first + again)
    statuses = {r.work.ref.key: r.outcome.status for r in first if r.outcome is not None}
    assert statuses["incoming/b-bad.json"] is Status.FAILED
    assert statuses["incoming/c-dup.json"] is Status.DUPLICATE
    assert statuses["incoming/d-conflict.json"] is Status.CONFLICT
    assert [r.outcome.status for r in again if r.outcome] == [r.outcome.status for r in first if r.outcome]
    assert len(topic.messages) == len(MIXED) - 1  # the duplicate owes none; the re-delivery sends nothing
    assert list(dead.letters) == [ObjectRef("b", "incoming/b-bad.json", "v1").identity]


# -- real processes ------------------------------------------------------------------------
def _put_orders(data_dir: Path, count: int) -> list[str]:
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    keys = []
    for i in range(count):
        doc = {"id": f"order-{i}", "lines": [{"sku": f"s-{i % 97}", "qty": i % 5}] * 6}
        tmp = data_dir / f".o-{i}.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.rename(incoming / f"order-{i:05d}.json")
        keys.append(f"incoming/order-{i:05d}.json")
    return keys


def _config(path: Path, *, hook: str | None = None, **local: object) -> Path:
    lines = ["[local]", "settle_seconds = 0"] + [f"{k} = {json.dumps(v)}" for k, v in local.items()]
    if hook:
        lines += ["", "[[local.subscriptions]]", 'type = "webhook"', f'url = "{hook}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _processed(data_dir: Path) -> int:
    return int(str(peek(data_dir, "SELECT count(*) FROM files WHERE status = 'processed'")[0][0]))


def _deliveries_once(data_dir: Path, keys: list[str]) -> None:
    rows = peek(data_dir, "SELECT notification_id, count(*) FROM deliveries GROUP BY 1")
    assert len(rows) == len(keys) and all(n == 1 for _, n in rows), rows[:5]
    orphans = "SELECT count(*) FROM deliveries d LEFT JOIN notifications n ON n.id = d.notification_id"
    assert peek(data_dir, orphans + " WHERE n.id IS NULL")[0][0] == 0


@pytest.mark.slow
def test_item1_kill_9_in_the_middle_of_batches_then_a_rerun_loses_and_doubles_nothing(tmp_path: Path) -> None:
    # GIVEN 5,000 small files and a webhook subscription (no receiver: deliveries stay pending)
    data_dir = tmp_path / "data"
    keys = _put_orders(data_dir, 5000)  # enough that a poll every 0.1 s lands mid-run
    config = _config(tmp_path / "dockline.toml", hook="http://127.0.0.1:9/hook")
    done = 0
    for round_ in range(2):
        # WHEN a run --once is killed -9 while batches are being settled (twice)
        proc = dockline(data_dir, "run", "--once", "--quiet", config=config)
        try:
            assert wait_for(lambda before=done: _processed(data_dir) >= before + 200, 60), "no batch settled"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.communicate(timeout=30)
        done = _processed(data_dir)
        if round_ == 0:
            assert done < len(keys), "the run ended before it could be killed"
        # THEN what is settled is whole: items, notified, one message and one delivery each
        whole = peek(data_dir, "SELECT count(*) FROM files WHERE status = 'processed' AND notified = 1")[0][0]
        assert whole == done
        assert peek(data_dir, "SELECT count(*) FROM items")[0][0] == done
        assert peek(data_dir, "SELECT count(*) FROM notifications")[0][0] == done
    # WHEN it runs again to the end
    again = run(data_dir, "run", "--once", "--quiet", config=config)
    assert again.returncode == 0, again.stderr
    # THEN every file is processed once: one item, one notification, one delivery each
    assert_each_once(data_dir, keys)
    _deliveries_once(data_dir, keys)


@pytest.mark.slow
def test_item1_two_processes_racing_with_batches_settle_every_file_once(tmp_path: Path) -> None:
    # GIVEN 2,000 small files
    data_dir = tmp_path / "data"
    keys = _put_orders(data_dir, 2000)
    config = _config(tmp_path / "dockline.toml", hook="http://127.0.0.1:9/hook", concurrency=2)
    # WHEN two run --once start together on the same bucket, then one more picks up what was busy
    procs = [dockline(data_dir, "run", "--once", "--quiet", config=config) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    last = run(data_dir, "run", "--once", "--quiet", config=config)
    assert last.returncode == 0, last.stderr
    # THEN each file was settled once, by one of them: one item, one notification, one delivery
    assert_each_once(data_dir, keys)
    _deliveries_once(data_dir, keys)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from small_tmpfs(tmp_path, 8)


@pytest.mark.slow
def test_item1_a_full_disk_during_a_batch_rolls_it_back_says_so_in_one_line_and_a_later_run_completes(
    small_disk: Path,
) -> None:
    # GIVEN 600 small files (three batches) on a disk that fills while the ledger grows
    config = _config(small_disk.parent / "dockline.toml")
    data_dir = small_disk / "data"
    assert run(data_dir, "run", "--once", config=config).returncode == 0  # the database exists
    keys = _put_orders(data_dir, 600)
    filler = _fill(small_disk, 192 * 1024)
    # WHEN run --once hits it
    result = run(data_dir, "run", "--once", config=config)
    # THEN exit 1 and one line that says the disk is full
    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert "disk is full" in line or "No space left" in line, line
    # AND no batch is half there: every settled file has its items and its notification
    settled = peek(data_dir, "SELECT count(*) FROM files WHERE status = 'processed'")[0][0]
    assert settled < len(keys)
    assert peek(data_dir, "SELECT count(*) FROM files WHERE status = 'processed' AND notified = 1")[0][0] == settled
    assert peek(data_dir, "SELECT count(*) FROM items")[0][0] == settled
    assert peek(data_dir, "SELECT count(*) FROM notifications")[0][0] == settled
    # WHEN space comes back and it runs again
    filler.unlink()
    again = run(data_dir, "run", "--once", config=config)
    # THEN every file is processed exactly once
    assert again.returncode == 0, again.stderr
    assert_each_once(data_dir, keys)


def test_item1_batches_keep_order_split_by_size_and_share_the_files_among_workers() -> None:
    small = [ObjectRef("b", f"s{i}", "v", size=1000) for i in range(10)]
    big = ObjectRef("b", "big", "v", size=10_000_000)
    # a big file goes on its own, between the batches before and after it
    assert batches([*small[:4], big, *small[4:]]) == [small[:4], [big], small[4:]]
    # two workers: two batches of five
    assert batches(small, workers=2) == [small[:5], small[5:]]
    assert batches([], workers=3) == []


def test_item1_a_unit_inside_a_unit_is_kept_or_rolled_back_with_it(engine: LocalEngine) -> None:
    # GIVEN the engine's database, and a unit that opens another inside it (as the batch does)
    db = engine.db
    with db.transaction() as conn:
        conn.execute("INSERT INTO dead_letters VALUES ('kept', 'b', 'k', 'v', 'r', 1, 't')")
    # WHEN the outer unit fails after the inner one finished
    with contextlib.suppress(RuntimeError), db.transaction() as outer:
        outer.execute("INSERT INTO dead_letters VALUES ('outer', 'b', 'k', 'v', 'r', 1, 't')")
        with db.transaction() as inner:
            inner.execute("INSERT INTO dead_letters VALUES ('inner', 'b', 'k', 'v', 'r', 1, 't')")
        raise RuntimeError("the batch failed")
    # THEN neither is there; WHEN the outer unit ends well THEN both are
    assert [r["id"] for r in db.query("SELECT id FROM dead_letters")] == ["kept"]
    with db.transaction() as outer:
        outer.execute("INSERT INTO dead_letters VALUES ('outer', 'b', 'k', 'v', 'r', 1, 't')")
        with db.transaction() as inner:
            inner.execute("INSERT INTO dead_letters VALUES ('inner', 'b', 'k', 'v', 'r', 1, 't')")
    assert sorted(r["id"] for r in db.query("SELECT id FROM dead_letters")) == ["inner", "kept", "outer"]


RELEASE_MID_BATCH = """
import os, sys, threading, time
from contextlib import contextmanager
from pathlib import Path
from dockline.config import LocalSettings, Settings
from dockline.local.engine import LocalEngine

engine = LocalEngine(Path(sys.argv[1]), Settings(local=LocalSettings(settle_seconds=0.0)))
inner = engine.pipeline.store
read = threading.Event()

class SlowStore:  # each read takes a while, so the batch is still running when we stop
    def __getattr__(self, name):
        return getattr(inner, name)

    @contextmanager
    def open(self, ref):
        read.set()
        time.sleep(0.05)
        with inner.open(ref) as body:
            yield body

engine.pipeline.store = SlowStore()
threading.Thread(target=lambda: engine.run_once(workers=1), daemon=True).start()
read.wait(30)
print(engine.in_flight(), engine.release_in_flight(), flush=True)
os._exit(0)
"""


def test_item1_release_in_flight_releases_every_file_of_a_running_batch(tmp_path: Path) -> None:
    # GIVEN 40 small files (one batch) and a process whose reads are slow
    data_dir = tmp_path / "data"
    keys = _put_orders(data_dir, 40)
    # WHEN it stops (as SIGTERM's handler does) while the batch is being read
    done = subprocess.run(
        [sys.executable, "-c", RELEASE_MID_BATCH, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # THEN every file of the batch was in flight and released: claimed, none leased any more
    assert done.stdout.split() == ["40", "40"], done.stdout
    claimed = "SELECT count(*) FROM files WHERE status = 'processing'"
    assert peek(data_dir, claimed)[0][0] == 40
    assert peek(data_dir, claimed + " AND lease_owner IS NOT NULL")[0][0] == 0
    # AND the next run takes them at once and settles each once
    config = _config(tmp_path / "dockline.toml", lease_seconds=3600)
    again = run(data_dir, "run", "--once", "--quiet", config=config)
    assert again.returncode == 0, again.stderr
    assert_each_once(data_dir, keys)
