"""Why 8: disk full. A small tmpfs holds the data dir; we fill it, run, free it, run again."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local._disks import fill as _fill
from tests.local._disks import small_tmpfs
from tests.local._procs import assert_each_once, dockline, drop, one_line, peek, run, wait_for, write_config


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from small_tmpfs(tmp_path, 16)


def _prepare(disk: Path, count: int, config: Path) -> tuple[Path, list[str]]:
    data_dir = disk / "data"
    assert run(data_dir, "run", "--once", config=config).returncode == 0  # the database exists
    keys = []
    for i in range(count):
        drop(data_dir, f"order-{i:03d}.json", {"id": f"order-{i}", "lines": [{"sku": "x" * 40, "n": i}] * 5})
        keys.append(f"incoming/order-{i:03d}.json")
    return data_dir, keys


def test_why8_run_once_on_a_full_disk_counts_only_committed_files_then_recovers(small_disk: Path) -> None:
    config = write_config(small_disk.parent / "dockline.toml")
    data_dir, keys = _prepare(small_disk, 300, config)
    # GIVEN a disk that fills while the ledger grows (256 KiB left: the run gets going first)
    filler = _fill(small_disk)
    os.truncate(filler, filler.stat().st_size - 256 * 1024)
    # WHEN run --once hits it
    result = run(data_dir, "run", "--once", config=config)
    # THEN exit 1, one line, no "cannot commit", and no count beyond what was committed
    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert "cannot commit" not in line and "no transaction is active" not in line
    assert "disk is full" in line or "No space left" in line, line
    claimed = int(re.search(r"(\d+) files settled", line).group(1))  # type: ignore[union-attr]
    committed = peek(data_dir, "SELECT count(*) FROM files WHERE status = 'processed'")[0][0]
    assert claimed <= committed
    # WHEN space comes back and it runs again
    (small_disk / "filler").unlink()
    again = run(data_dir, "run", "--once", config=config)
    # THEN every file is processed exactly once and the ledger is consistent
    assert again.returncode == 0, again.stderr
    assert_each_once(data_dir, keys, notified_at_least_once=True)


def test_why8_a_watcher_on_a_full_disk_backs_off_and_resumes(small_disk: Path) -> None:
    config = write_config(small_disk.parent / "dockline.toml", poll_seconds=0.2)
    data_dir, keys = _prepare(small_disk, 200, config)
    filler = _fill(small_disk)
    # GIVEN a watcher started on a full disk
    watcher = dockline(data_dir, "run", "--quiet", config=config)
    try:
        # WHEN it has hit the error for a few seconds: THEN it is still running
        time.sleep(4)
        assert watcher.poll() is None, watcher.communicate()[1]
        # WHEN space comes back: THEN it resumes and processes every file
        filler.unlink()
        done = "SELECT count(*) FROM files WHERE status = 'processed'"
        assert wait_for(lambda: peek(data_dir, done)[0][0] == len(keys), 60), peek(data_dir, done)
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    assert "Traceback" not in err
    # AND it said so, one line per attempt
    assert "not processing:" in err and "trying again in" in err, err
    assert_each_once(data_dir, keys, notified_at_least_once=True)
