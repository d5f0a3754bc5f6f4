"""Issue 11, item 2: a scan whose cost per known file is a small constant, and a watcher
that sleeps until inotify wakes it, rescanning the whole bucket only as a rare safety net
(at once when inotify lost events)."""

from __future__ import annotations

import os
import select
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from watchdog.observers.inotify_c import inotify_add_watch, inotify_init

from dockline.local.engine import LocalEngine
from dockline.local.inotify import NO_WATCH, OVERFLOW, InotifyWatch
from dockline.local.queries import list_files
from tests.local.conftest import cli_command, cli_env, drop, settings, write_config

IN_OPEN = 0x00000020


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@contextmanager
def opens_of(folder: Path) -> Iterator[Callable[[], list[str]]]:
    """A separate inotify watch on ``folder`` for IN_OPEN: the names opened in it so far
    ('' for the folder itself, which a scan opens to list it)."""
    fd = inotify_init()
    assert fd >= 0
    assert inotify_add_watch(fd, os.fsencode(folder), IN_OPEN) >= 0
    os.set_blocking(fd, False)
    seen: list[str] = []

    def names() -> list[str]:
        while select.select([fd], [], [], 0.05)[0]:
            data = os.read(fd, 65536)
            offset = 0
            while offset < len(data):
                _wd, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                seen.append(data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode())
                offset += 16 + length
        return list(seen)

    try:
        yield names
    finally:
        os.close(fd)


def _python_calls_of_scan(engine: LocalEngine) -> int:
    calls = 0

    def count(_frame: object, event: str, _arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        engine.scan()
    finally:
        sys.setprofile(None)
    return calls


def test_item2_a_known_settled_file_costs_a_small_constant_of_python_work(engine: LocalEngine) -> None:
    # GIVEN 100 processed files, then 1,000 more processed beside them
    for i in range(100):
        drop(engine, f"incoming/a-{i:04d}.json", {"id": f"a{i}"})
    engine.run_once(workers=1)
    engine.scan()
    small = _python_calls_of_scan(engine)
    for i in range(1000):
        drop(engine, f"incoming/b-{i:04d}.json", {"id": f"b{i}"})
    summary = engine.run_once(workers=1)
    assert len(summary.outcomes) == 1000
    engine.scan()
    # WHEN the bucket is scanned with nothing new
    big = _python_calls_of_scan(engine)
    # THEN each of the 1,000 known files cost at most 3 Python calls (before: about 15,
    # a ref, a timestamp and a route match each); nothing was found to do
    assert (big - small) / 1000 <= 3, (small, big)
    assert engine.scan().ready == []


def test_item2_a_settled_file_is_skipped_without_being_opened(engine: LocalEngine) -> None:
    # GIVEN a processed file
    drop(engine, "incoming/done.json", {"id": "done"})
    engine.run_once()
    with opens_of(engine.bucket_dir / "incoming") as opened:
        # WHEN the bucket is scanned again
        result = engine.scan()
        # THEN nothing is to do, and the file itself was never opened (its folder was, to list it)
        assert result.ready == []
        assert "done.json" not in opened()
        assert "" in opened()
        # ... while a changed file is opened and hashed again
        (engine.bucket_dir / "incoming" / "done.json").write_text('{"id": "done", "v": 2}')
        assert [ref.key for ref in engine.scan().ready] == ["incoming/done.json"]
        assert "done.json" in opened()


def test_item2_a_file_hashed_but_never_claimed_is_still_ready(engine: LocalEngine) -> None:
    # GIVEN a scan that hashed a file into the stat cache, and no run that took it
    # (as after a crash between the scan and the claim)
    drop(engine, "incoming/new.json", {"id": "new"})
    first = engine.scan()
    assert [ref.key for ref in first.ready] == ["incoming/new.json"]
    # WHEN the bucket is scanned again
    again = engine.scan()
    # THEN the cached version is still to do, with the same version
    assert [(ref.key, ref.version) for ref in again.ready] == [(r.key, r.version) for r in first.ready]


def test_item2_an_idle_watcher_sleeps_and_inotify_wakes_it(data_dir: Path) -> None:
    # GIVEN a watcher whose first safety rescan comes after 0.2 s, with a processed file
    engine = LocalEngine(data_dir, settings(poll_seconds=0.2))
    drop(engine, "incoming/old.json", {"id": "old"})
    stop = threading.Event()
    with opens_of(engine.bucket_dir / "incoming") as opened:
        watcher = threading.Thread(target=engine.watch, kwargs={"stop": stop}, daemon=True)
        watcher.start()
        try:
            assert wait_for(lambda: len(list_files(engine.db)) == 1)
            # WHEN nothing arrives for 3 s (read as they come: the kernel merges an event
            # into an identical one still unread)
            quiet_until = time.monotonic() + 3
            while time.monotonic() < quiet_until:
                opened()
            # THEN it listed the folder a handful of times (rescans at 0.2, 1.0, 4.2 s...),
            # not every 0.2 s as before (15 times)
            listings = opened().count("")
            assert listings <= 8, listings
            # ... and a file that arrives now is taken at once, long before the next rescan
            drop(engine, "incoming/new.json", {"id": "new"})
            assert wait_for(lambda: len(list_files(engine.db)) == 2, timeout=3.0)
        finally:
            stop.set()
            watcher.join(timeout=10)
    assert not watcher.is_alive()


@contextmanager
def inotify_queue_of(events: int) -> Iterator[None]:
    """New inotify instances get a queue of ``events`` while inside (as root; restored at
    once: other processes' watchers are created with the normal size)."""
    knob = Path("/proc/sys/fs/inotify/max_queued_events")
    if os.geteuid() != 0:
        pytest.skip("needs root to lower fs.inotify.max_queued_events")
    before = knob.read_text()
    knob.write_text(str(events))
    try:
        yield
    finally:
        knob.write_text(before)


def test_item2_an_inotify_queue_overflow_rescans_the_whole_bucket_at_once(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a watch whose kernel queue holds 16 events, and 40 files that land before
    # anything reads it (a real IN_Q_OVERFLOW, not a simulated one)
    engine = LocalEngine(data_dir, settings(poll_seconds=60))
    with inotify_queue_of(16):
        watch = InotifyWatch(engine.bucket_dir)
    for i in range(40):
        drop(engine, f"incoming/burst-{i:02d}.json", {"id": f"burst{i}"})
    stop = threading.Event()
    watcher = threading.Thread(target=engine.watch, kwargs={"stop": stop, "watch": watch}, daemon=True)
    # WHEN the watcher starts reading
    watcher.start()
    try:
        # THEN it says the events were lost, rescans, and every file is processed
        assert wait_for(lambda: len(list_files(engine.db)) == 40)
        assert wait_for(lambda: OVERFLOW in caplog.text), caplog.text
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()
    assert all(row["status"] == "processed" for row in list_files(engine.db))


def test_item2_the_overflow_is_reported_by_the_watch_itself(tmp_path: Path) -> None:
    with inotify_queue_of(16):
        watch = InotifyWatch(tmp_path)
    try:
        for i in range(40):
            (tmp_path / f"f{i}").write_text("x")
        assert watch.take_lost() is None
        watch.start()
        assert wait_for(watch.changed.is_set)
        assert wait_for(lambda: watch.take_lost() == OVERFLOW, timeout=5)
    finally:
        watch.stop()


@pytest.mark.slow
def test_item2_a_folder_inotify_cannot_watch_is_said_and_rescanned(tmp_path: Path, data_dir: Path) -> None:
    # GIVEN `dockline run` in a user namespace that allows 2 inotify watches, and a bucket
    # with more folders than that (bucket/, incoming/, incoming/a/, incoming/b/)
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a user namespace with its own watch limit")
    for sub in ("a", "b"):
        (data_dir / "bucket" / "incoming" / sub).mkdir(parents=True)
    config = write_config(tmp_path / "dockline.toml", "poll_seconds = 0.3\n")
    command = " ".join(f"'{part}'" for part in cli_command(data_dir, "run", config=config))
    proc = subprocess.Popen(
        [unshare, "-U", "-r", "sh", "-c", f"echo 2 > /proc/sys/user/max_inotify_watches && exec {command}"],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)
        # WHEN a file lands in a folder that has no watch
        drop(data_dir, "incoming/b/late.json", {"id": "late"})
        # THEN the watcher finds it by rescanning, and says why it rescans
        deadline = time.monotonic() + 20
        done = ""
        while time.monotonic() < deadline:
            listed = subprocess.run(
                cli_command(data_dir, "files", "list", "--json"),
                capture_output=True,
                text=True,
                env=cli_env(),
                cwd=tmp_path,
                check=False,
            )
            done = listed.stdout
            if "incoming/b/late.json" in done and "processed" in done:
                break
            time.sleep(0.3)
    finally:
        proc.terminate()
        _out, stderr = proc.communicate(timeout=30)
    assert "incoming/b/late.json" in done, stderr
    assert stderr.count(NO_WATCH) == 1, stderr  # said once, not at every rescan
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_item2_a_notification_another_process_left_owed_is_sent_before_the_next_rescan(data_dir: Path) -> None:
    # GIVEN a sleeping watcher past its first safety rescans (0.2, 1.0, 4.2 s; the next is ~17 s away)
    engine = LocalEngine(data_dir, settings(poll_seconds=0.2))
    drop(engine, "incoming/a.json", {"id": "a"})
    stop = threading.Event()
    watcher = threading.Thread(target=engine.watch, kwargs={"stop": stop}, daemon=True)
    watcher.start()
    try:
        assert wait_for(lambda: len(engine.topic.messages()) == 1)
        time.sleep(5)
        # WHEN another process is left as a crash between settle and publish leaves it: the
        # file settled, its notification still owed (written through its own connection)
        import sqlite3

        with sqlite3.connect(data_dir / "dockline.db") as other:
            other.execute("UPDATE files SET notified = 0 WHERE key = 'incoming/a.json'")
        # THEN the watcher sends it within a few polls, not at its next rescan
        assert wait_for(lambda: len(engine.topic.messages()) == 2, timeout=4.0)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()


def _known_queries(engine: LocalEngine) -> list[str]:
    """Records the scan's big query (``seen`` joined to ``files``) on the reading connection."""
    ran: list[str] = []
    engine.db.connection().set_trace_callback(lambda sql: ran.append(sql) if "FROM seen s" in sql else None)
    return ran


def test_item2_a_rescan_with_nothing_committed_does_not_read_the_seen_cache_again(engine: LocalEngine) -> None:
    # GIVEN 50 processed files and a first rescan after them
    for i in range(50):
        drop(engine, f"incoming/a-{i:02d}.json", {"id": f"a{i}"})
    engine.run_once(workers=1)
    ran = _known_queries(engine)
    assert engine.scan().ready == []
    assert len(ran) == 1
    # WHEN the watcher rescans with nothing committed since
    again = engine.scan()
    # THEN the answer is the same and the 50 rows were not read again
    assert again.ready == [] and len(ran) == 1
    # AND a new file is found by the walk whatever is remembered, and its seen row (a commit)
    # makes the rescan after it read again
    drop(engine, "incoming/b.json", {"id": "b"})
    assert [ref.key for ref in engine.scan().ready] == ["incoming/b.json"]
    assert len(ran) == 1
    assert [ref.key for ref in engine.scan().ready] == ["incoming/b.json"]
    assert len(ran) == 2


def test_item2_what_another_process_settles_is_seen_by_the_next_rescan(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN a watcher's engine that has rescanned twice with one file hashed, not yet taken
    watcher, other = make_engine(), make_engine()  # two databases handles: two processes' connections
    drop(watcher, "incoming/f.json", {"id": "f"})
    [first] = watcher.scan().ready
    assert [ref.key for ref in watcher.scan().ready] == ["incoming/f.json"]  # remembered: hashed, unsettled
    # WHEN another process settles it
    assert len(other.run_once(workers=1).outcomes) == 1
    # THEN the watcher's next rescan knows (a remembered answer would offer it again)
    assert watcher.scan().ready == []
    assert watcher.scan().ready == []
    # AND when the other process reopens it for a reprocess, the next rescan offers it again
    assert other.ledger.reprocess(first, now="2026-12-01T00:00:00.000Z")
    assert [(ref.key, ref.version) for ref in watcher.scan().ready] == [("incoming/f.json", first.version)]
