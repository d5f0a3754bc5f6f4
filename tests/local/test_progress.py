"""Progress on long work (issue 10, What to build 2; Why "Long work is silent"): a run
busy with a big file tells other processes how far it got, watch mode says so every few
seconds and sums up each settled file, and `run --once` on a terminal has a bar in bytes
and records. Real subprocesses, real signals, a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockline.config import PipelineSettings
from dockline.local.engine import LocalEngine
from dockline.local.progress import Board
from dockline.models import ObjectRef, Outcome, Status
from tests.local.conftest import cli_command, cli_env, run_cli, settings, write_config

RECORDS = 300_000
BATCH = 1000


@pytest.fixture
def config(tmp_path: Path) -> Path:
    # Small batches: many progress reports per second, so a look in the middle is never lucky.
    return write_config(tmp_path / "dockline.toml", f"[pipeline]\nbatch_size = {BATCH}\n")


def _big_ndjson(data_dir: Path, name: str, records: int = RECORDS) -> int:
    line = '{"id": "%s-%d", "device": "thermo-7", "temperature": 21.5, "note": "padding to make it slower"}\n'
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f"{name}.tmp"
    with tmp.open("w") as out:
        for start in range(0, records, 10_000):
            out.write("".join(line % (name, i) for i in range(start, min(start + 10_000, records))))
    size = tmp.stat().st_size
    tmp.rename(incoming / name)
    return size


def _files(data_dir: Path, config: Path) -> list[dict[str, Any]]:
    done = run_cli(data_dir, "files", "list", "--json", "--all", config=config)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


# -- files list and status: another process sees how far a run got -------------------------
@pytest.mark.slow
def test_why_long_work_files_list_and_status_show_records_and_bytes_done_in_flight(
    data_dir: Path, config: Path
) -> None:
    # GIVEN a run busy with a big NDJSON file
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    size = _big_ndjson(data_dir, "big.ndjson")
    runner = subprocess.Popen(
        cli_command(data_dir, "run", "--once", "--quiet", config=config),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data_dir.parent,
        env=cli_env(),
    )
    try:
        # WHEN another process looks while it works, and the run is paused (Ctrl-Z) midway
        row: dict[str, Any] | None = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and runner.poll() is None:
            rows = [r for r in _files(data_dir, config) if r["status"] == "processing"]
            if rows and rows[0]["records_done"] > 0:
                runner.send_signal(signal.SIGTSTP)  # it commits what it wrote, then stops
                break
        assert runner.poll() is None, "the run finished before anyone could look: make the file bigger"
        time.sleep(0.5)
        row = next(r for r in _files(data_dir, config) if r["key"] == "incoming/big.ndjson")
        status = run_cli(data_dir, "status", "--json", config=config)
        table = run_cli(data_dir, "files", "list", config=config)

        # THEN the files row says how far it got: records and bytes done, and since when
        assert row["status"] == "processing"
        assert 0 < row["records_done"] < RECORDS
        assert row["records_done"] % BATCH == 0  # persisted with each full batch
        assert 0 < row["bytes_done"] < size
        assert row["started_at"] is not None
        assert row["seconds"] is None  # not settled yet
        # AND status's in-flight row shows the same numbers
        flying = json.loads(status.stdout)["in_flight"]
        assert [(f["key"], f["records"], f["bytes_done"], f["size"]) for f in flying] == [
            ("incoming/big.ndjson", row["records_done"], row["bytes_done"], size)
        ]
        # AND the table shows them too
        assert f"{row['records_done']:,}" in table.stdout
        assert " / " in table.stdout  # bytes done / size
    finally:
        runner.send_signal(signal.SIGCONT)
        _out, err = runner.communicate(timeout=120)
    assert runner.returncode == 0, err

    # AND once settled, the row shows its records and how long the attempt took
    row = next(r for r in _files(data_dir, config) if r["key"] == "incoming/big.ndjson")
    assert row["status"] == "processed"
    assert row["records"] == RECORDS
    assert row["seconds"] is not None and row["seconds"] > 0
    started = row["started_at"]
    assert started is not None and started <= row["updated_at"]


def test_why_long_work_a_new_attempt_starts_its_progress_again(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN a file an earlier attempt claimed and got partway through, then lost (kill -9)
    engine = make_engine(settings(pipeline=PipelineSettings(batch_size=BATCH)))
    _big_ndjson(engine.data_dir, "small.ndjson", records=2 * BATCH + 5)
    [ref] = engine.scan().ready
    assert engine.ledger.begin(ref, now="2026-01-01T00:00:00.000Z") is None
    with engine.db.transaction() as conn:
        conn.execute("UPDATE files SET records_done = 999, bytes_done = 999, lease_owner = NULL, lease_until = NULL")
    # WHEN a run processes it again
    summary = engine.run_once()
    # THEN the settled row has this attempt's start and numbers, not the lost attempt's
    assert [o.status for o in summary.outcomes] == [Status.PROCESSED]
    row = engine.db.query("SELECT records, records_done, bytes_done, started_at, attempts FROM files")[0]
    assert (row["records"], row["records_done"], row["attempts"]) == (2 * BATCH + 5, 2 * BATCH, 2)
    assert row["started_at"] > "2026-01-01T00:00:00.000Z"
    assert 0 < row["bytes_done"] <= ref.size


# -- watch mode: a line every few seconds, and one per settled file ------------------------
@pytest.mark.slow
def test_why_long_work_watch_prints_progress_lines_and_a_summary_per_file(data_dir: Path, config: Path) -> None:
    # GIVEN a watcher that reports progress every half second
    watcher = subprocess.Popen(
        cli_command(data_dir, "run", "--progress-seconds", "0.5", config=config),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data_dir.parent,
        env=cli_env(),
    )
    lines: list[str] = []
    try:
        assert watcher.stderr is not None
        lines.append(watcher.stderr.readline())
        assert "watching" in lines[0]
        # WHEN a big file and a small one arrive
        _big_ndjson(data_dir, "big.ndjson")
        _big_ndjson(data_dir, "small.ndjson", records=3)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = watcher.stderr.readline()
            lines.append(line)
            if any(x.startswith("settled incoming/big") for x in lines) and any(
                x.startswith("settled incoming/small") for x in lines
            ):
                break
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.communicate(timeout=30)
    # THEN the big file said how far it got while it ran
    progress = [line for line in lines if line.startswith("still processing incoming/big.ndjson: ")]
    assert progress, lines
    assert " records, " in progress[0] and " of " in progress[0] and "records/s" in progress[0]
    # AND each file got one summary line: records, duration and rate
    big = [line for line in lines if line.startswith("settled incoming/big.ndjson: ")]
    small = [line for line in lines if line.startswith("settled incoming/small.ndjson: ")]
    assert len(big) == 1 and len(small) == 1, lines
    assert f"processed, {RECORDS:,} records in " in big[0] and "records/s" in big[0]
    assert "processed, 3 records in " in small[0]
    # AND no file was reported as still running after it settled
    assert not any(line.startswith("still processing incoming/small.ndjson") for line in lines)


# -- run --once on a terminal: a bar in bytes and records, with a files count ---------------
@pytest.mark.slow
def test_why_long_work_run_once_on_a_terminal_shows_bytes_records_and_files(data_dir: Path, config: Path) -> None:
    # GIVEN a big file and a small one waiting, and stderr a terminal
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    total = _big_ndjson(data_dir, "big.ndjson") + _big_ndjson(data_dir, "small.ndjson", records=3)
    leader, follower = pty.openpty()
    env = {**cli_env(), "COLUMNS": "160", "TERM": "xterm"}
    proc = subprocess.Popen(
        cli_command(data_dir, "run", "--once", "--quiet", config=config),
        stdout=subprocess.DEVNULL,
        stderr=follower,
        cwd=data_dir.parent,
        env=env,
    )
    os.close(follower)
    # WHEN it runs
    screen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace"))
    assert proc.returncode == 0, text
    frames = [
        match.groups() for match in re.finditer(r"([\d.]+)/([\d.]+) MB .*?([\d,]+) records, (\d+)/(\d+) files", text)
    ]
    # THEN the bar counted bytes of the planned total, with records and files done
    assert frames, text[-2000:]
    assert {float(planned) for _, planned, *_ in frames} == {round(total / 1e6, 1)}
    assert {files for *_, files in frames} == {"2"}
    records = [int(r.replace(",", "")) for _, _, r, _, _ in frames]
    assert records == sorted(records)  # it only goes forward
    assert any(0 < r < RECORDS for r in records), "no frame showed the big file part done"
    done = [float(d) for d, *_ in frames]
    assert done == sorted(done) and max(done) > 0
    # AND the run's summary line follows
    assert "2 files settled in" in text


# -- the board itself ---------------------------------------------------------------------
def _ref(key: str, size: int) -> ObjectRef:
    return ObjectRef(bucket="local", key=key, version=key, size=size)


def test_board_totals_count_finished_bytes_in_full_and_running_bytes_so_far() -> None:
    now = [100.0]
    board = Board(clock=lambda: now[0])
    a, b = _ref("a", 1000), _ref("b", 500)
    board.plan([a, b])
    board.start(a)
    board.start(b)
    board.batch(a, 10, 300)
    now[0] = 103.0
    assert board.totals().bytes_done == 300 and board.totals().records == 10
    assert [(r.ref.key, seconds) for r, seconds in board.running()] == [("a", 3.0), ("b", 3.0)]
    board.batch(b, 5, 500)
    assert board.finish(b) == 3.0  # b settled: its size counts in full
    totals = board.totals()
    assert (totals.files_done, totals.files_planned, totals.bytes_done, totals.bytes_planned) == (1, 2, 800, 1500)
    assert totals.records == 15
    seen: list[tuple[str, float]] = []
    board.subscribe(lambda outcome, seconds: seen.append((outcome.ref.key, seconds)))
    board.settled(Outcome(ref=b, status=Status.PROCESSED, records=5), 3.0)
    assert seen == [("b", 3.0)]
