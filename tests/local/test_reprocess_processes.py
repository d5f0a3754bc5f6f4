"""`dockline reprocess` with real processes (issue 10, item 6): a kill -9 in the middle of a
big file, and a `dockline run` watching the same data dir while it works."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import cli_command, cli_env, run_cli, write_config

ROWS = 300_000
KEPT = ROWS - ROWS // 10  # every tenth qty is "x": skipped once qty is an int
FIRST = '[pipeline]\nrecords = "split"\nbatch_size = 2000\n'
TYPED = FIRST + 'csv_schema = { qty = "int" }\non_bad_record = "skip"\n'


def look(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect((data_dir / "dockline.db").absolute().as_uri() + "?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def one(data_dir: Path, sql: str) -> Any:
    try:
        return look(data_dir, sql)[0][0]
    except sqlite3.Error:
        return None


def big_csv(path: Path, rows: int, *, start: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("id,qty\n")
        for i in range(start, start + rows):
            out.write(f"r{i},{'x' if i % 10 == 7 else i}\n")


def reprocessed_notes(data_dir: Path) -> list[str]:
    rows = look(data_dir, "SELECT attributes FROM notifications")
    return [json.loads(str(a))["key"] for (a,) in rows if json.loads(str(a)).get("reprocessed") == "true"]


@pytest.mark.slow
@pytest.mark.parametrize("finisher", [("run", "--once", "--quiet"), ("reprocess", "--all")], ids=["run", "reprocess"])
def test_kill_9_mid_reprocess_is_finished_by_the_next_run_with_the_same_items(
    tmp_path: Path, data_dir: Path, finisher: tuple[str, ...]
) -> None:
    # GIVEN a 300,000-row CSV settled with string values
    big_csv(data_dir / "bucket/incoming/big.csv", ROWS)
    first = run_cli(data_dir, "run", "--once", "--quiet", config=write_config(tmp_path / "first.toml", FIRST))
    assert first.returncode == 0, first.stderr
    typed = write_config(tmp_path / "typed.toml", TYPED)
    # WHEN its reprocess is killed with SIGKILL once part of the new items are written
    proc = subprocess.Popen(
        cli_command(data_dir, "reprocess", "--all", config=typed),
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while (one(data_dir, "SELECT count(*) FROM items WHERE generation = 1") or 0) < 20_000:
            assert proc.poll() is None, "the reprocess finished before it could be killed"
            assert time.monotonic() < deadline, "the reprocess never got going"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # THEN the file is visibly unsettled, its items half old, half new
    assert look(data_dir, "SELECT status, generation FROM files") == [("processing", 1)]
    new = one(data_dir, "SELECT count(*) FROM items WHERE generation = 1")
    assert 20_000 <= new < KEPT, "the kill must land mid-file"
    assert one(data_dir, "SELECT count(*) FROM items WHERE generation = 0") > 0
    assert reprocessed_notes(data_dir) == []
    # AND the next run (or reprocess) finishes it: the items of one clean reprocess
    done = run_cli(data_dir, *finisher, config=typed, timeout=120)
    assert done.returncode == 0, done.stderr
    assert look(data_dir, "SELECT status, generation, records, skipped_total FROM files") == [
        ("processed", 1, KEPT, ROWS - KEPT)
    ]
    assert one(data_dir, "SELECT count(*) FROM items") == KEPT
    exact = (
        "SELECT count(*) FROM items WHERE generation = 1"
        " AND json_extract(payload, '$.qty') = CAST(substr(pk, 2) AS INT)"
    )
    assert one(data_dir, exact + " AND json_type(payload, '$.qty') = 'integer'") == KEPT
    assert reprocessed_notes(data_dir) == ["incoming/big.csv"]


def test_reprocess_while_dockline_run_watches_processes_each_file_once(tmp_path: Path, data_dir: Path) -> None:
    # GIVEN 60 settled CSV files, and a `dockline run` watching the data dir (rescans every 0.1 s)
    keys = [f"incoming/part-{n:02d}.csv" for n in range(60)]
    for n, key in enumerate(keys):
        big_csv(data_dir / "bucket" / key, 1000, start=n * 1000)
    # (the watcher runs 4 files at a time, the reprocess 1: each is bound to reach some first)
    typed = write_config(tmp_path / "typed.toml", "poll_seconds = 0.1\nconcurrency = 4\n" + TYPED)
    first = run_cli(data_dir, "run", "--once", "--quiet", config=write_config(tmp_path / "first.toml", FIRST))
    assert first.returncode == 0, first.stderr
    watcher = subprocess.Popen(
        cli_command(data_dir, "run", config=typed),
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)  # let it start watching (its first scan finds nothing to do)
        assert watcher.poll() is None, watcher.stderr.read() if watcher.stderr else ""
        # WHEN every file is reprocessed meanwhile
        done = run_cli(data_dir, "reprocess", "--all", "--workers", "1", config=typed, timeout=120)
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, _err = watcher.communicate(timeout=30)
    # THEN the reprocess reports every file, though the watcher took some of them
    assert done.returncode == 0, done.stderr
    assert "reprocessed 60 files" in done.stderr and "60 processed" in done.stderr, done.stderr
    # (the watcher prints a line per notification it publishes, i.e. per file it processed)
    print(f"the watcher processed {out.count('File reprocessed')} of the 60 files")
    assert "File reprocessed" in out, "the watcher never took a reopened file: no contest was tested"
    # AND each file was processed once: one notification each, its typed items, nothing stale
    notes = reprocessed_notes(data_dir)
    assert sorted(notes) == keys, "a file was reprocessed twice or not at all"
    assert look(data_dir, "SELECT DISTINCT status, generation FROM files") == [("processed", 1)]
    assert one(data_dir, "SELECT count(*) FROM items") == 60 * 900
    assert one(data_dir, "SELECT count(*) FROM items WHERE json_type(payload, '$.qty') = 'integer'") == 60 * 900
