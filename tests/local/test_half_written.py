"""A file still being written is never read (issue 8, Why 9; What to build 3).

A real writer process writes half a document, pauses with the file open for longer
than the quiet time, writes the rest and closes. Both `run --once` and watch mode must
see exactly one outcome: `processed`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import dockline
from dockline.local.engine import LocalEngine
from tests.local.conftest import files_by_key, letters, messages, settings

KEY = "incoming/slow.json"
DOCUMENT = json.dumps({"id": "slow", "rows": [{"n": n, "text": "x" * 40} for n in range(2000)]}).encode()
PAUSE_SECONDS = 3.0

WRITER = """
import sys, time
path, half, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
data = sys.stdin.buffer.read()
with open(path, "wb") as out:
    out.write(data[:half])
    out.flush()
    print("half", flush=True)
    time.sleep(pause)
    out.write(data[half:])
print("closed", flush=True)
"""


@pytest.fixture
def slow_writer() -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(target: Path) -> subprocess.Popen[str]:
        target.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), str(len(DOCUMENT) // 2), str(PAUSE_SECONDS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(DOCUMENT.decode())
        proc.stdin.close()
        assert proc.stdout.readline().strip() == "half"  # half the file is on disk, still open
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def assert_exactly_one_outcome_processed(engine: LocalEngine) -> None:
    rows = files_by_key(engine)[KEY]
    assert [(r["status"], r["error"]) for r in rows] == [("processed", None)], rows
    assert [m["subject"] for m in messages(engine, KEY)] == ["S3 Event Processed"]
    assert letters(engine) == []


def test_why9_run_once_waits_for_a_writer_that_pauses_with_the_file_open(
    make_engine: Callable[..., LocalEngine], slow_writer: Callable[[Path], subprocess.Popen[str]]
) -> None:
    # GIVEN a writer that has written half a file and pauses for 3 s, longer than the
    # quiet time of 1 s
    engine = make_engine(settings(settle_seconds=1.0))
    writer = slow_writer(engine.bucket_dir / KEY)
    # WHEN `run --once` runs meanwhile, and once more after the writer closed
    first = engine.run_once(max_wait_seconds=20)
    assert writer.wait(timeout=20) == 0
    second = engine.run_once(max_wait_seconds=5)
    # THEN the file was read once, whole
    assert [o.status.value for o in first.outcomes + second.outcomes] == ["processed"]
    assert first.errors == [] and second.errors == []
    assert_exactly_one_outcome_processed(engine)


def test_why9_watch_waits_for_a_writer_that_pauses_with_the_file_open(
    make_engine: Callable[..., LocalEngine], slow_writer: Callable[[Path], subprocess.Popen[str]]
) -> None:
    # GIVEN a watching engine with a quiet time of 1 s
    engine = make_engine(settings(settle_seconds=1.0, poll_seconds=0.2))
    stop = threading.Event()
    watcher = threading.Thread(target=engine.watch, kwargs={"stop": stop}, daemon=True)
    watcher.start()
    try:
        # WHEN a writer writes half a file, pauses 3 s with it open, then finishes
        writer = slow_writer(engine.bucket_dir / KEY)
        assert writer.wait(timeout=20) == 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not messages(engine, KEY):
            time.sleep(0.1)
        time.sleep(1.5)  # room for a second, wrong outcome to show up
    finally:
        stop.set()
        watcher.join(timeout=10)
    # THEN exactly one outcome: processed, with no failure and no dead letter
    assert not watcher.is_alive()
    assert_exactly_one_outcome_processed(engine)


PROBE = """
import os, sys, time
from dockline.local.scan import held_for_writing
seen = set()
deadline = time.monotonic() + 2
while time.monotonic() < deadline:
    fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
    try:
        seen.add(held_for_writing(fd))
    finally:
        os.close(fd)
print(sorted(map(str, seen)))
"""


def test_the_lease_probe_survives_writers_opening_the_file_meanwhile(tmp_path: Path) -> None:
    # GIVEN a process that opens a file for writing again and again (each open breaks
    # any read lease; the kernel signals the lease holder, by default with SIGIO,
    # whose default action kills the process)
    target = tmp_path / "busy.json"
    target.write_text("{}")
    opener = subprocess.Popen([sys.executable, "-c", f"while True: open({str(target)!r}, 'a').close()"])
    try:
        # WHEN another process probes the file many times meanwhile
        probe = subprocess.run(
            [sys.executable, "-c", PROBE, str(target)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(Path(dockline.__file__).parents[1])},
            check=False,
        )
    finally:
        opener.kill()
        opener.wait()
    # THEN the probe was not killed by a signal, and saw the writer at least once
    assert probe.returncode == 0, (probe.returncode, probe.stderr)
    assert "True" in probe.stdout and "None" not in probe.stdout, probe.stdout
