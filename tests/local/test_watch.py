"""`dockline run` without --once: files are processed as they land, half-written ones only when whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from dockline.config import LocalSettings, Settings
from dockline.local.engine import LocalEngine
from dockline.local.queries import list_files


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_file_written_slowly_is_processed_once_and_whole(tmp_path: Path) -> None:
    # GIVEN a watching engine that waits for a file to be quiet for 0.4 s
    settings = replace(Settings(), local=LocalSettings(settle_seconds=0.4, poll_seconds=0.2))
    engine = LocalEngine(tmp_path / "data", settings)
    stop = threading.Event()
    watcher = threading.Thread(target=engine.watch, kwargs={"stop": stop}, daemon=True)
    watcher.start()
    try:
        # WHEN a file is written in two halves with a pause between them (like a slow copy)
        target = engine.bucket_dir / "incoming" / "slow.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w") as out:
            out.write('{"id": "slow", "items": [1, 2, ')
            out.flush()
            time.sleep(0.25)
            out.write("3]}")
        # ... and another file arrives later
        time.sleep(0.2)
        (engine.bucket_dir / "incoming" / "later.json").write_text('{"id": "later"}')
        # THEN both are processed, and the slow one was never read half (never failed)
        assert wait_for(
            lambda: len(list_files(engine.db)) == 2 and all(f["status"] == "processed" for f in list_files(engine.db))
        )
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()
    rows = list_files(engine.db)
    assert sorted((r["key"], r["status"], r["attempts"]) for r in rows) == [
        ("incoming/later.json", "processed", 1),
        ("incoming/slow.json", "processed", 1),
    ]
    assert len(engine.topic.messages()) == 2


def test_dockline_run_watches_until_sigterm(tmp_path: Path) -> None:
    # GIVEN `dockline run` watching an empty data dir
    data_dir = tmp_path / "data"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockline", "--data-dir", str(data_dir), "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for((data_dir / "dockline.db").exists)
        # WHEN a file is put while it runs
        source = tmp_path / "order.json"
        source.write_text('{"id": "o-1", "total": 19.99}')
        subprocess.run(
            [sys.executable, "-m", "dockline", "--data-dir", str(data_dir), "put", str(source)],
            check=True,
            capture_output=True,
            timeout=60,
        )

        def processed() -> bool:
            out = subprocess.run(
                [sys.executable, "-m", "dockline", "--data-dir", str(data_dir), "files", "list", "--json"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            return out.returncode == 0 and [f["status"] for f in json.loads(out.stdout)] == ["processed"]

        # THEN it is processed without a restart
        assert wait_for(processed, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    # AND SIGTERM stops it cleanly: exit 0, a line per notification, no traceback
    assert proc.returncode == 0, stderr
    assert "[processed] S3 Event Processed: New file processed: incoming/order.json" in stdout
    assert "Traceback" not in stderr
