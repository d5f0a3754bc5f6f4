"""`dockline status` while things move (issue 10, What to build 1, local part): a run
busy with a big file, a killed worker, and `--watch` into a pipe, as JSON, on a terminal
and as a user who may only read. Real subprocesses and signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import TRACEBACK_MARKERS, cli_command, cli_env, drop, run_cli, write_config
from tests.local.test_permissions import _become_nobody as become_nobody
from tests.local.test_permissions import interpreter_for_nobody
from tests.local.test_status import ESC, db_rows, status_json


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "dockline.toml")


# -- while a run works -----------------------------------------------------------------------
def _big_ndjson(path: Path, records: int) -> None:
    line = '{"id": "r-%d", "device": "thermo-7", "temperature": 21.5, "note": "padding to make it slower"}\n'
    with path.open("w") as out:
        for start in range(0, records, 10_000):
            out.write("".join(line % i for i in range(start, min(start + 10_000, records))))


@pytest.mark.slow
def test_status_while_a_run_is_processing_shows_it_in_flight_and_never_waits(data_dir: Path, config: Path) -> None:
    # GIVEN a run busy with a big NDJSON file
    records = 600_000
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0  # the data dir exists
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    _big_ndjson(data_dir / "big.tmp", records)
    (data_dir / "big.tmp").rename(incoming / "big.ndjson")
    runner = subprocess.Popen(
        cli_command(data_dir, "run", "--once", "--quiet", config=config),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data_dir.parent,
        env=cli_env(),
    )
    try:
        # WHEN status looks while it works
        seen: dict[str, Any] | None = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and runner.poll() is None:
            started = time.monotonic()
            done = run_cli(data_dir, "status", "--json", config=config)
            took = time.monotonic() - started
            # THEN it answers at once (read-only: it never waits for the writer's lock)
            assert done.returncode == 0, done.stderr
            assert took < 10, took
            report = json.loads(done.stdout)
            if report["in_flight"]:
                seen = report
                break
            time.sleep(0.05)
        assert seen is not None, "status never saw the file in flight"
        # ... the file is processing, held by a live worker, and still in the backlog
        [flying] = seen["in_flight"]
        assert flying["key"] == "incoming/big.ndjson"
        assert flying["size"] == (incoming / "big.ndjson").stat().st_size
        assert 0 <= flying["records"] <= records
        assert seen["files"]["processing"] == 1
        assert seen["backlog"]["files"] == 1
        _out, err = runner.communicate(timeout=120)
        assert runner.returncode == 0, err
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    # ... and once it settled: nothing in flight, nothing waiting, its records counted
    after = status_json(data_dir, config=config)
    assert after["in_flight"] == [] and after["backlog"]["files"] == 0
    assert after["files"]["processed"] == 1
    assert after["throughput"]["1m"]["records"] == records


@pytest.mark.slow
def test_status_does_not_count_a_killed_workers_file_in_flight(data_dir: Path, config: Path) -> None:
    # GIVEN a run killed with SIGKILL in the middle of a big file (its lease is still in the row)
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0  # the data dir exists
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    _big_ndjson(data_dir / "big.tmp", 600_000)
    (data_dir / "big.tmp").rename(incoming / "big.ndjson")
    runner = subprocess.Popen(
        cli_command(data_dir, "run", "--once", "--quiet", config=config),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=data_dir.parent,
        env=cli_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and runner.poll() is None:
            if db_rows(data_dir, "SELECT 1 FROM files WHERE status = 'processing'"):
                break
            time.sleep(0.02)
        assert runner.poll() is None, "the run finished before it could be killed; use a bigger file"
        os.kill(runner.pid, signal.SIGKILL)
    finally:
        runner.wait()
    # WHEN status looks
    report = status_json(data_dir, config=config)
    # THEN the row is still 'processing', but no live worker holds it: not in flight, still waiting
    assert report["files"]["processing"] == 1
    assert report["in_flight"] == []
    assert report["backlog"]["files"] == 1


# -- --watch ---------------------------------------------------------------------------------
def _watch(data_dir: Path, config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command(data_dir, "status", "--watch", *args, config=config),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data_dir.parent,
        env=cli_env(),
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return out, err


def test_status_watch_piped_prints_a_line_per_refresh_and_ctrl_c_exits_0(data_dir: Path, config: Path) -> None:
    # GIVEN a processed file, and status --watch into a pipe
    drop(data_dir, "incoming/a.json", {"id": "a"})
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    proc = _watch(data_dir, config)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        # WHEN a file arrives between refreshes
        drop(data_dir, "incoming/b.json", {"id": "b"})
        second = proc.stdout.readline()
    finally:
        out, err = _stop(proc)
    # THEN each refresh is one plain line, the second sees the new file waiting,
    assert "1 processed" in first and "backlog 0" in first
    assert "backlog 1" in second
    assert ESC not in first + second + out
    # ... and Ctrl-C ends it with exit 0 and no traceback
    assert proc.returncode == 0, err
    for marker in TRACEBACK_MARKERS[:2]:
        assert marker not in err
    assert "interrupted" not in err


def test_status_watch_json_prints_one_object_per_line(data_dir: Path, config: Path) -> None:
    drop(data_dir, "incoming/a.json", {"id": "a"})
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    proc = _watch(data_dir, config, "--json")
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
    finally:
        _out, err = _stop(proc)
    reports = [json.loads(line) for line in lines]
    assert [r["files"]["processed"] for r in reports] == [1, 1]
    assert reports[0]["at"] < reports[1]["at"]
    assert proc.returncode == 0, err


def test_status_watch_on_a_terminal_redraws_and_ctrl_c_exits_0(data_dir: Path, config: Path) -> None:
    # GIVEN status --watch on a pseudo-terminal (rich Live)
    import pty

    drop(data_dir, "incoming/a.json", {"id": "a"})
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    leader, follower = pty.openpty()
    env = {k: v for k, v in cli_env().items() if k != "COLUMNS"}
    proc = subprocess.Popen(
        cli_command(data_dir, "status", "--watch", config=config),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=data_dir.parent,
        env={**env, "TERM": "xterm", "COLUMNS": "120", "LINES": "40"},
    )
    os.close(follower)
    shown = b""
    try:
        deadline = time.monotonic() + 30
        # WHEN it has drawn twice (the second draw moves the cursor back up over the first)
        while time.monotonic() < deadline and shown.count(b"dockline status at") < 2:
            try:
                shown += os.read(leader, 65536)
            except OSError:
                break
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        try:
            while chunk := os.read(leader, 65536):
                shown += chunk
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    text = shown.decode(errors="replace")
    # THEN it showed the picture, redrew it in place, and Ctrl-C ended it with exit 0, no traceback
    assert text.count("dockline status at") >= 2, text
    assert "1 processed" in text
    assert proc.returncode == 0, text
    assert "Traceback" not in text


def test_status_watch_as_a_read_only_user_sees_a_writer_that_starts_later(shared_dir: Path) -> None:
    # GIVEN a data dir closed cleanly by its owner (no -wal, no -shm), that another user may only read
    if os.geteuid() != 0:
        pytest.skip("needs root to run the CLI as another user (nobody)")
    data_dir = shared_dir / "data"
    config = write_config(shared_dir / "dockline.toml")
    drop(data_dir, "incoming/first.json", {"id": "1"})
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    assert not Path(f"{data_dir / 'dockline.db'}-wal").exists()
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    command = cli_command(data_dir, "status", "--watch", "--json", config=config)
    command[0], python_path = interpreter_for_nobody()
    watcher = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data_dir.parent,
        env={**cli_env(), "HOME": str(shared_dir), "PYTHONPATH": python_path},
        preexec_fn=become_nobody,  # noqa: PLW1509 - as test_permissions does: setuid before exec
    )
    try:
        assert watcher.stdout is not None
        assert json.loads(watcher.stdout.readline())["files"]["processed"] == 1
        # WHEN the owner processes a second file while that user watches
        drop(data_dir, "incoming/second.json", {"id": "2"})
        assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
        # THEN a later refresh shows it (the watch does not keep reading a stale snapshot)
        counts = [json.loads(watcher.stdout.readline())["files"]["processed"] for _ in range(3)]
    finally:
        watcher.send_signal(signal.SIGINT)
        _out, err = watcher.communicate(timeout=30)
    assert counts[-1] == 2, (counts, err)
    assert watcher.returncode == 0, err
