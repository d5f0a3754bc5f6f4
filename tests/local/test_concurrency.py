"""Concurrency on one data dir (issue 4, section 6).

Two ``dockline run`` processes over the same files never process one object version
twice, and ``--workers`` / ``[local] concurrency`` bound how many files are in flight.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from dockline.local.engine import LocalEngine
from dockline.models import ObjectRef
from dockline.ports import ObjectStore
from tests.local.conftest import (
    SlowWebhook,
    cli_command,
    cli_env,
    cli_json,
    drop,
    files_by_key,
    items,
    messages,
    settings,
    write_config,
)


def put_files(data_dir: Path, count: int) -> set[str]:
    keys = set()
    for i in range(count):
        key = f"incoming/c/f{i:04d}.json"
        drop(data_dir, key, {"id": f"doc-{i}", "n": i})
        keys.add(key)
    return keys


def test_two_run_processes_never_process_a_file_twice(
    tmp_path: Path, data_dir: Path, slow_webhook: Callable[[float], SlowWebhook]
) -> None:
    # GIVEN 150 files and two `run --once` processes started together on one data dir;
    # a slow webhook widens the window between the ledger write and the notification
    keys = put_files(data_dir, 150)
    hook = slow_webhook(0.002)
    config = write_config(
        tmp_path / "dockline.toml", f'[[local.subscriptions]]\ntype = "webhook"\nurl = "{hook.url}"\n'
    )
    command = cli_command(data_dir, "run", "--once", "--quiet", "--workers", "3", config=config)
    # WHEN both run to the end
    procs = [
        subprocess.Popen(
            command, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    # THEN both succeeded, and every file has one row, one item and exactly one notification
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    rows = cli_json(data_dir, "files", "list", "--all")
    assert Counter(row["key"] for row in rows) == Counter(keys)
    assert {row["status"] for row in rows} == {"processed"}
    assert {row["attempts"] for row in rows} == {1}
    assert len(cli_json(data_dir, "ledger", "list", "--all")) == len(keys)
    notes = Counter(n["attributes"]["key"] for n in cli_json(data_dir, "notifications", "list"))
    assert notes == Counter(keys), {k: n for k, n in notes.items() if n != 1}
    assert Counter(body["attributes"]["key"] for body in hook.bodies) == Counter(keys)


def test_two_engines_in_threads_share_the_work_without_doubling_it(
    make_engine: Callable[..., LocalEngine],
) -> None:
    # GIVEN 200 files and two engines (two ledgers with their own lease owners) on one data dir
    first, second = make_engine(), make_engine()
    keys = {f"incoming/t/f{i:04d}.json" for i in range(200)}
    for i, key in enumerate(sorted(keys)):
        drop(first, key, {"id": f"doc-{i}"})
    # WHEN both run at the same time, with two workers each
    errors: list[BaseException] = []

    def run(engine: LocalEngine) -> None:
        try:
            engine.run_once(workers=2)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    # ... and once more, to pick up anything one engine left busy for the other
    first.run_once()
    # THEN each file was processed once and notified once
    rows = files_by_key(first)
    assert set(rows) == keys and all(len(v) == 1 and v[0]["status"] == "processed" for v in rows.values())
    assert len(items(first)) == 200
    assert Counter(m["attributes"]["key"] for m in messages(first)) == Counter(keys)


class CountingStore(ObjectStore):
    """Tracks how many objects are open at once; each read takes a little while."""

    def __init__(self, inner: ObjectStore, *, hold_seconds: float) -> None:
        self.inner, self.hold_seconds = inner, hold_seconds
        self.lock = threading.Lock()
        self.open_now = 0
        self.max_open = 0

    @contextmanager
    def _open(self, ref: ObjectRef) -> Iterator[BinaryIO]:
        with self.lock:
            self.open_now += 1
            self.max_open = max(self.max_open, self.open_now)
        try:
            time.sleep(self.hold_seconds)
            with self.inner.open(ref) as body:
                yield body
        finally:
            with self.lock:
                self.open_now -= 1

    def open(self, ref: ObjectRef) -> AbstractContextManager[BinaryIO]:
        return self._open(ref)


def test_workers_bound_parallelism(engine: LocalEngine) -> None:
    # GIVEN 24 files whose reads take 20 ms each
    put_files(engine.data_dir, 24)
    store = CountingStore(engine.store, hold_seconds=0.02)
    engine.pipeline.store = store
    # WHEN the engine runs with 3 workers
    summary = engine.run_once(workers=3)
    # THEN files were read in parallel, never more than 3 at once
    assert len(summary.outcomes) == 24
    assert store.max_open == 3


def test_concurrency_setting_is_the_default_bound(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN [local] concurrency = 2 and no --workers
    engine = make_engine(settings(concurrency=2))
    put_files(engine.data_dir, 12)
    store = CountingStore(engine.store, hold_seconds=0.02)
    engine.pipeline.store = store
    # WHEN the engine runs
    engine.run_once()
    # THEN at most two files were in flight
    assert store.max_open == 2
