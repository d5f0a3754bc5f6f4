"""Why 7: one paused process froze all others. Real processes, real SIGSTOP/SIGTSTP/SIGCONT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.local._procs import assert_each_once, dockline, drop, peek, run, wait_for, write_config

HOLDER = """
import os, signal, sys
from pathlib import Path
from dockline.local.db import Database
db = Database(Path(sys.argv[1]))
with db.transaction() as conn:
    conn.execute("UPDATE files SET error = error")
    print("holding", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)  # paused inside a write: the worst moment
"""


def test_why7_a_process_stopped_holding_the_lock_is_named_and_never_blocks_readers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = write_config(tmp_path / "dockline.toml", lock_wait_seconds=2)
    drop(data_dir, "a.json", {"id": "a", "n": 1})
    assert run(data_dir, "run", "--once", config=config).returncode == 0
    # GIVEN a process stopped in the middle of a write transaction
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir / "dockline.db")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"holding"
        assert wait_for(lambda: Path(f"/proc/{holder.pid}/stat").read_text().split(") ")[1][0] == "T", 5)
        drop(data_dir, "b.json", {"id": "b", "n": 2})
        # WHEN a reader looks: THEN it answers at once
        started = time.monotonic()
        listed = run(data_dir, "files", "list", "--json", config=config, timeout=20)
        assert listed.returncode == 0, listed.stderr
        assert time.monotonic() - started < 5
        # WHEN a writer runs --once: THEN it waits the bound, names the stopped pid, exits 1, one line
        started = time.monotonic()
        once = run(data_dir, "run", "--once", config=config, timeout=60)
        took = time.monotonic() - started
        assert once.returncode == 1, once.stderr
        assert f"waiting for pid {holder.pid} (it is stopped" in once.stderr
        assert "database is locked" not in once.stderr and "Traceback" not in once.stderr
        assert f"pid {holder.pid} (stopped) held the ledger lock" in once.stderr
        assert took < 30
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.wait(timeout=20)
    # AND once it is gone, the next run processes what was waiting
    assert run(data_dir, "run", "--once", config=config).returncode == 0
    assert_each_once(data_dir, ["incoming/a.json", "incoming/b.json"])


LINES = 500


def _drop_lines(data_dir: Path, name: str) -> None:
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{name}.tmp"
    tmp.write_text("".join(f'{{"id": "{name}-{j}", "n": {j}}}\n' for j in range(LINES)))
    tmp.rename(incoming / f"{name}.jsonl")


def _wait_stopped(pid: int) -> None:
    for _ in range(5000):
        if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "T":
            return
        time.sleep(0.001)
    raise AssertionError(f"pid {pid} did not stop")


def _holds_lock(data_dir: Path, pid: int) -> bool:
    from dockline.local.lock import lock_holder

    fd = os.open(data_dir / "dockline.db.lock", os.O_RDWR)
    try:
        return lock_holder(fd) == pid
    finally:
        os.close(fd)


def _pause_two_watchers(tmp_path: Path, pause: signal.Signals) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = write_config(tmp_path / "dockline.toml", lock_wait_seconds=3, poll_seconds=0.2)
    assert run(data_dir, "run", "--once", config=config).returncode == 0  # create the database
    keys = []
    for i in range(300):  # 300 files of 500 lines: seconds of work, so the pause lands mid-work
        _drop_lines(data_dir, f"early-{i:03d}")
        keys.append(f"incoming/early-{i:03d}.jsonl")
    first = dockline(data_dir, "run", "--quiet", config=config)
    second = dockline(data_dir, "run", "--quiet", config=config)
    try:
        for proc in (first, second):  # both past start-up, signal handlers in place
            assert proc.stderr is not None and proc.stderr.readline().startswith("watching ")
        assert wait_for(lambda: peek(data_dir, "SELECT count(*) FROM files")[0][0] >= 5, 30)
        # GIVEN the first watcher paused mid-work. SIGTSTP (Ctrl-Z) is caught: the process
        # commits and releases the lock before it stops, so the first try is always clean.
        # SIGSTOP cannot be caught: under a burst of small files the group commit keeps the
        # lock nearly all the time, and a process stopped holding it blocks other writers
        # until SIGCONT (they name it, and `run --once` gives up after lock_wait_seconds).
        # So SIGSTOP is retried until it lands outside a write: that is what is promised.
        for attempt in range(1, 301):  # noqa: B007 - reported after the loop
            first.send_signal(pause)
            _wait_stopped(first.pid)
            if not _holds_lock(data_dir, first.pid):
                break
            first.send_signal(signal.SIGCONT)
            time.sleep(0.01)
        print(f"{pause.name} landed outside a write at attempt {attempt}")
        assert not _holds_lock(data_dir, first.pid)
        early = "SELECT count(*) FROM files WHERE key LIKE 'incoming/early-%' AND status = 'processed'"
        assert peek(data_dir, early)[0][0] < 300, "paused after the work was done: proves nothing"
        # WHEN files keep arriving
        for i in range(40):
            _drop_lines(data_dir, f"late-{i:03d}")
            keys.append(f"incoming/late-{i:03d}.jsonl")
        # THEN the other watcher processes every new file within a bound
        late = "SELECT count(*) FROM files WHERE key LIKE 'incoming/late-%' AND status = 'processed'"
        assert wait_for(lambda: peek(data_dir, late)[0][0] == 40, 30), peek(data_dir, late)
        # AND files list answers at once
        started = time.monotonic()
        assert run(data_dir, "files", "list", config=config, timeout=20).returncode == 0
        assert time.monotonic() - started < 5
    finally:
        first.send_signal(signal.SIGCONT)
    # AND after SIGCONT nothing is processed twice and nothing is lost
    done = "SELECT count(*) FROM files WHERE status = 'processed'"
    assert wait_for(lambda: peek(data_dir, done)[0][0] == len(keys), 30)
    for proc in (first, second):
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired as hung:  # say what it was doing, not only that it hung
            proc.send_signal(signal.SIGABRT)  # the fault handler prints every thread's stack
            _, err = proc.communicate(timeout=30)
            which = "first" if proc is first else "second"
            raise AssertionError(f"{which} ignored SIGTERM for 30 s: {err[-6000:]}") from hung
        assert proc.returncode == 0, (proc is first, err)
        assert "Traceback" not in err and "database is locked" not in err
    assert_each_once(data_dir, keys, items_per_key=LINES)


@pytest.mark.slow
def test_why7_ctrl_z_on_one_watcher_does_not_stop_the_other(tmp_path: Path) -> None:
    _pause_two_watchers(tmp_path, signal.SIGTSTP)


@pytest.mark.slow
def test_why7_sigstop_on_one_watcher_outside_a_write_does_not_stop_the_other(tmp_path: Path) -> None:
    _pause_two_watchers(tmp_path, signal.SIGSTOP)


@pytest.mark.slow
def test_why7_a_watcher_keeps_waiting_for_a_stopped_holder_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = write_config(tmp_path / "dockline.toml", lock_wait_seconds=1.5, poll_seconds=0.2)
    assert run(data_dir, "run", "--once", config=config).returncode == 0
    # GIVEN a process stopped inside a write transaction, and a file waiting
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir / "dockline.db")], stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"holding"
    drop(data_dir, "c.json", {"id": "c", "n": 3})
    watcher = dockline(data_dir, "run", "--quiet", config=config)
    try:
        # WHEN the watcher has waited through several bounds: THEN it is still there
        time.sleep(7)
        assert watcher.poll() is None
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.wait(timeout=20)
    # AND once the holder is gone it processes the file
    done = "SELECT count(*) FROM files WHERE status = 'processed' AND key = 'incoming/c.json'"
    assert wait_for(lambda: peek(data_dir, done)[0][0] == 1, 60)
    watcher.send_signal(signal.SIGTERM)
    _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    assert "Traceback" not in err and "database is locked" not in err
    # a line per wait, naming the stopped pid, and a line per attempt given up
    assert err.count(f"waiting for pid {holder.pid} (it is stopped") >= 2, err
    assert "trying again in" in err, err


def test_why7_the_stop_handler_can_count_files_in_flight_while_its_thread_holds_the_count(
    tmp_path: Path,
) -> None:
    # Seen in CI (the fault handler's stacks): SIGTERM's handler runs on the main thread, which
    # may be inside `work()`'s `with _in_flight_lock` (one worker runs files on the main thread);
    # the handler's `in_flight()` then waited for a lock its own thread held: a watcher that
    # never stopped. GIVEN that lock held by this thread, WHEN the count is read on it
    import threading

    from dockline.local.engine import LocalEngine
    from tests.local.conftest import settings

    engine = LocalEngine(tmp_path / "data", settings())
    counted: list[int] = []

    def handler_inside_the_lock() -> None:
        with engine._in_flight_lock:  # what work() holds when the signal lands
            counted.append(engine.in_flight())

    thread = threading.Thread(target=handler_inside_the_lock, daemon=True)
    thread.start()
    thread.join(timeout=5)
    # THEN it answers at once
    assert counted == [0], "in_flight() waited for a lock its own thread holds"
    engine.db.close()
