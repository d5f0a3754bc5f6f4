"""Why 10: stopping. Real `dockline run` subprocesses, real SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.local._procs import assert_each_once, dockline, peek, run, wait_for, write_config

LINES = 5000  # 300 files of 5,000 lines: several seconds of work, well past the bound


def _backlog(data_dir: Path, files: int, lines: int) -> list[str]:
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True)
    keys = []
    for i in range(files):
        body = "".join(f'{{"id": "f{i}-r{j}", "n": {j}}}\n' for j in range(lines))
        (incoming / f"part-{i:04d}.jsonl").write_text(body)
        keys.append(f"incoming/part-{i:04d}.jsonl")
    return keys


def _processed(data_dir: Path) -> int:
    return int(str(peek(data_dir, "SELECT count(*) FROM files WHERE status = 'processed'")[0][0]))


@pytest.mark.slow
@pytest.mark.parametrize("mode", [["--once"], []], ids=["run-once", "watch"])
def test_why10_sigterm_stops_taking_files_at_once_and_a_rerun_finishes_the_rest(
    tmp_path: Path, mode: list[str]
) -> None:
    data_dir = tmp_path / "data"
    keys = _backlog(data_dir, 300, LINES)
    config = write_config(tmp_path / "dockline.toml")
    # GIVEN run --once, or a watcher, busy with a backlog of hundreds of files
    proc = dockline(data_dir, "run", *mode, "--quiet", "--workers", "2", config=config)
    assert wait_for(lambda: _processed(data_dir) >= 5, 60)
    # WHEN it gets SIGTERM
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    # THEN it stops within about a second or two, not after the backlog, and says what it did
    assert took < 3, (took, err)
    # (a watcher stopped by SIGTERM has done its job: 0; an interrupted --once has not)
    assert proc.returncode == (128 + signal.SIGTERM if mode else 0), err
    assert "Traceback" not in err
    finished = _processed(data_dir)
    assert finished < len(keys), "the whole backlog was processed: the stop came too late to prove anything"
    assert f"stopped: {finished} files finished, 0 released" in err, err
    # AND a rerun finishes the rest, each file exactly once
    again = run(data_dir, "run", "--once", "--quiet", config=config, timeout=300)
    assert again.returncode == 0, again.stderr
    assert_each_once(data_dir, keys, items_per_key=LINES)


@pytest.mark.slow
def test_why10_a_file_in_flight_past_the_grace_period_is_released_not_abandoned(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    keys = _backlog(data_dir, 1, 300_000)
    config = write_config(tmp_path / "dockline.toml", stop_grace_seconds=0.5)
    # GIVEN a watcher in the middle of one big file (SIGINT: Ctrl-C)
    proc = dockline(data_dir, "run", "--quiet", config=config)
    in_flight = "SELECT count(*) FROM files WHERE status = 'processing'"
    assert wait_for(lambda: peek(data_dir, in_flight)[0][0] == 1, 60)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    # THEN after the grace period it releases the file, says so, and exits
    assert time.monotonic() - sent < 5, err
    assert "stopped: 0 files finished, 1 released for the next run" in err, err
    assert proc.returncode == 128 + signal.SIGINT
    lease = peek(data_dir, "SELECT lease_owner FROM files")
    assert lease == [(None,)], lease
    # AND the next run takes it at once and settles it exactly once
    again = run(data_dir, "run", "--once", "--quiet", config=config, timeout=300)
    assert again.returncode == 0, again.stderr
    assert_each_once(data_dir, keys, items_per_key=300_000)


def test_why10_a_second_signal_stops_at_once_and_says_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _backlog(data_dir, 1, 300_000)
    config = write_config(tmp_path / "dockline.toml", stop_grace_seconds=60)
    proc = dockline(data_dir, "run", "--once", "--quiet", config=config)
    in_flight = "SELECT count(*) FROM files WHERE status = 'processing'"
    assert wait_for(lambda: peek(data_dir, in_flight)[0][0] == 1, 60)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 3, err
    assert "stopped at once: 0 files finished, 1 in flight left unfinished" in err, err
