"""`dockline status` (issue 10, What to build 1, local part): the facts a user needs,
read-only, through the real CLI in a subprocess on real data dirs."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import drop, run_cli, write_config
from tests.local.test_permissions import NOBODY, run_as_user

ESC = "\x1b"


def status_json(data_dir: Path, *args: str, config: Path | None = None) -> dict[str, Any]:
    done = run_cli(data_dir, "status", "--json", *args, config=config)
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def db_rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"{(data_dir / 'dockline.db').absolute().as_uri()}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "dockline.toml")


def test_status_shows_states_backlog_rates_dead_letters_and_the_last_error(data_dir: Path, config: Path) -> None:
    # GIVEN a run that processed a 3-record file and failed a broken one, then two new files
    drop(data_dir, "incoming/readings.ndjson", '{"id": "r1"}\n{"id": "r2"}\n{"id": "r3"}\n')
    drop(data_dir, "incoming/broken.json", '{"id": ')
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    drop(data_dir, "incoming/new-1.json", {"id": "n1"})
    time.sleep(0.05)
    drop(data_dir, "incoming/new-2.json", {"id": "n2"})
    # WHEN status --json looks
    report = status_json(data_dir, config=config)
    # THEN every state is counted (zeros included)
    assert report["files"] == {
        "pending": 0,
        "processing": 0,
        "processed": 1,
        "failed": 1,
        "duplicate": 0,
        "conflict": 0,
        "superseded": 0,
    }
    # ... the two new files wait, the older named
    assert report["backlog"]["files"] == 2
    assert report["backlog"]["oldest_key"] == "incoming/new-1.json"
    assert 0 <= report["backlog"]["oldest_age_seconds"] < 60
    # ... the two settled files and their records are in every window
    for window, seconds in (("1m", 60), ("5m", 300), ("15m", 900)):
        rate = report["throughput"][window]
        assert (rate["files"], rate["records"]) == (2, 3), window
        assert rate["records_per_second"] == pytest.approx(3 / seconds, abs=0.001)
    # ... and the failure: a dead letter, the last error with its key and reason
    assert report["dead_letters"] == 1
    assert report["last_error"]["key"] == "incoming/broken.json"
    assert "JSON" in report["last_error"]["reason"]
    assert report["in_flight"] == []
    assert report["deliveries"] == {"pending": 0, "sending": 0, "retrying": 0, "delivered": 0, "failed": 0}
    # ... and the text view says the same in words
    text = run_cli(data_dir, "status", config=config)
    assert text.returncode == 0, text.stderr
    assert "1 processed, 1 failed" in text.stdout
    assert "backlog: 2 files waiting" in text.stdout and "incoming/new-1.json" in text.stdout
    assert "last error: incoming/broken.json" in text.stdout


def test_status_writes_nothing_and_reads_no_file_content(data_dir: Path, config: Path) -> None:
    # GIVEN a settled file, and a file no scan has seen that nobody may read
    drop(data_dir, "incoming/done.json", {"id": "d"})
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    sealed = drop(data_dir, "incoming/sealed.json", {"id": "s"})
    sealed.chmod(0)
    seen_before = db_rows(data_dir, "SELECT * FROM seen ORDER BY key")
    files_before = db_rows(data_dir, "SELECT * FROM files ORDER BY id")
    # WHEN status looks
    report = status_json(data_dir, config=config)
    # THEN the settled file is not in the backlog, the new one is (unread, unhashed),
    assert report["backlog"]["files"] == 1 and report["backlog"]["oldest_key"] == "incoming/sealed.json"
    # ... and the seen cache and the files table are exactly as they were
    assert db_rows(data_dir, "SELECT * FROM seen ORDER BY key") == seen_before
    assert db_rows(data_dir, "SELECT * FROM files ORDER BY id") == files_before
    # ... and a changed settled file is waiting again
    drop(data_dir, "incoming/done.json", {"id": "d", "v": 2})
    assert status_json(data_dir, config=config)["backlog"]["files"] == 2


def test_status_on_a_missing_data_dir_is_one_line_and_exit_1(tmp_path: Path) -> None:
    # GIVEN no data dir; WHEN status (and status --check) looks
    for args in (("status",), ("status", "--check"), ("status", "--json")):
        done = run_cli(tmp_path / "nothing-here", *args)
        # THEN one line on stderr, exit 1 (for a health check, no data is not healthy), no traceback
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.startswith("dockline: error: no dockline data in")
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert not (tmp_path / "nothing-here").exists()


def test_status_works_for_a_user_who_may_only_read(shared_dir: Path) -> None:
    # GIVEN a data dir owned by root, with a processed file, a failed one and a waiting one,
    # that another user may read but not write (no -shm/-wal can be created by them); the
    # chmod moves every file's ctime, so the scan's cache no longer vouches for them
    data_dir = shared_dir / "data"
    config = write_config(shared_dir / "dockline.toml")
    drop(data_dir, "incoming/good.json", {"id": "g"})
    drop(data_dir, "incoming/bad.json", "{")
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    drop(data_dir, "incoming/later.json", {"id": "l"})
    for folder, dirs, names in os.walk(data_dir):
        for name in [*dirs, *names]:
            Path(folder, name).chmod(0o755 if Path(folder, name).is_dir() else 0o644)
    data_dir.chmod(0o755)
    if os.geteuid() != 0:
        pytest.skip("needs root to run the CLI as another user (nobody)")
    # WHEN that user asks for the status (and the health check)
    done = run_as_user(data_dir, config, "status", "--json")
    check = run_as_user(data_dir, config, "status", "--check")
    # THEN it reads everything, changes nothing, and reports the failure
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["files"]["processed"], report["files"]["failed"], report["dead_letters"]) == (1, 1, 1)
    assert report["backlog"] == {
        "files": 1,
        "oldest_key": "incoming/later.json",
        "oldest_age_seconds": pytest.approx(report["backlog"]["oldest_age_seconds"]),
    }
    assert check.returncode == 1 and check.stdout.startswith("problem: 1 failed file")
    assert all(p.stat().st_uid != NOBODY for p in data_dir.rglob("*"))


# -- --check ---------------------------------------------------------------------------------
def test_status_check_passes_on_a_healthy_data_dir(data_dir: Path, config: Path) -> None:
    # GIVEN everything processed
    drop(data_dir, "incoming/a.json", {"id": "a"})
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    # WHEN --check looks; THEN exit 0 with one "ok" line
    done = run_cli(data_dir, "status", "--check", config=config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: 1 processed")
    assert status_json(data_dir, config=config)["healthy"] is True


def test_status_check_fails_on_failed_files_and_dead_letters(data_dir: Path, config: Path) -> None:
    # GIVEN a file that failed (and so has a dead letter)
    drop(data_dir, "incoming/broken.json", "not json")
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    # WHEN --check looks
    done = run_cli(data_dir, "status", "--check", config=config)
    # THEN exit 1, one line per reason
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines == [
        "problem: 1 failed file (see `dockline files list --status failed`)",
        "problem: 1 dead letter (see `dockline dlq list`)",
    ]
    # ... and --json --check gives the same reasons with the same exit code
    as_json = run_cli(data_dir, "status", "--check", "--json", config=config)
    assert as_json.returncode == 1
    assert [f"problem: {p}" for p in json.loads(as_json.stdout)["problems"]] == lines


def test_status_check_fails_on_a_backlog_older_than_the_bound(data_dir: Path, config: Path) -> None:
    # GIVEN a data dir with a file that waits (no run has taken it since it came)
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    drop(data_dir, "incoming/waiting.json", {"id": "w"})
    time.sleep(1.1)
    # WHEN --check looks with a bound it has outlived, and with the default bound
    late = run_cli(data_dir, "status", "--check", "--max-backlog-age", "1", config=config)
    fine = run_cli(data_dir, "status", "--check", config=config)
    # THEN the first fails naming the oldest file, the second passes
    assert late.returncode == 1, late.stdout + late.stderr
    [line] = late.stdout.splitlines()
    assert line.startswith("problem: backlog: 1 file waiting, the oldest for ")
    assert line.endswith("(more than 1s): incoming/waiting.json")
    assert fine.returncode == 0, fine.stdout


def test_status_check_fails_on_failed_deliveries(tmp_path: Path, data_dir: Path) -> None:
    # GIVEN a webhook that refuses every connection, and no time at all to retry it
    config = write_config(
        tmp_path / "dockline.toml",
        "delivery_horizon_seconds = 0\n"
        '[[local.subscriptions]]\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\ntimeout_seconds = 1\n',
    )
    drop(data_dir, "incoming/a.json", {"id": "a"})
    # (twice: a run --once may end before its delivery thread sees the new delivery; the
    # next run's thread sends what the last one left)
    for _ in range(2):
        assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    # WHEN status looks
    report = status_json(data_dir, config=config)
    done = run_cli(data_dir, "status", "--check", config=config)
    # THEN the failed delivery is counted and fails the check, though the file processed
    assert report["files"]["processed"] == 1
    assert report["deliveries"]["failed"] == 1
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "problem: 1 failed delivery (see `dockline notifications list`; `dockline notifications redeliver --failed`)"
    ]


def test_status_check_cannot_watch(data_dir: Path, config: Path) -> None:
    drop(data_dir, "incoming/a.json", {"id": "a"})
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    done = run_cli(data_dir, "status", "--check", "--watch", config=config)
    assert done.returncode == 2
    assert done.stderr.startswith("dockline: error: --check is one look")


# -- keys are user data ----------------------------------------------------------------------
def test_status_prints_keys_and_reasons_literally(data_dir: Path, config: Path) -> None:
    # GIVEN a failed file and a waiting file whose names hold markup and an ESC sequence
    drop(data_dir, "incoming/[red]bad[/red].json", "{")
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    drop(data_dir, f"incoming/{ESC}[31mred.json", {"id": "x"})
    # WHEN status prints it (table view, and --check)
    shown = run_cli(data_dir, "status", config=config)
    check = run_cli(data_dir, "status", "--check", "--max-backlog-age", "0", config=config)
    # THEN the markup is shown as written and the ESC only as an escape
    for done in (shown, check):
        assert ESC not in done.stdout, done.stdout
        assert "Traceback" not in done.stderr
    assert "incoming/[red]bad[/red].json" in shown.stdout
    assert "incoming/\\x1b[31mred.json" in shown.stdout + check.stdout


# -- the facts, in process -------------------------------------------------------------------
def test_status_rates_count_each_window_and_queries_never_touch_the_items(make_engine: Any) -> None:
    from dockline.local.status import read_status

    # GIVEN two files settled just now (3 records)
    engine = make_engine()
    drop(engine, "incoming/a.ndjson", '{"id": "a1"}\n{"id": "a2"}\n')
    drop(engine, "incoming/b.json", {"id": "b"})
    engine.run_once()
    now = time.time()
    reader = make_engine()
    statements: list[str] = []
    reader.db.connection().set_trace_callback(statements.append)
    # WHEN status is read now, 2 minutes later and 10 minutes later
    at = {
        later: read_status(reader.db, reader.store, reader.settings.pipeline, now=now + later)
        for later in (0, 120, 600)
    }
    # THEN each window counts what settled inside it, per second over its whole length
    assert [(r.window_seconds, r.files, r.records) for r in at[0].rates] == [(60, 2, 3), (300, 2, 3), (900, 2, 3)]
    assert [(r.files, r.records) for r in at[120].rates] == [(0, 0), (2, 3), (2, 3)]
    assert [(r.files, r.records) for r in at[600].rates] == [(0, 0), (0, 0), (2, 3)]
    assert at[600].rates[2].records_per_second == pytest.approx(3 / 900)
    # ... and no statement reads the ledger items; the state counts come from their index
    assert statements and not [s for s in statements if "items" in s]
    conn = reader.db.connection()
    plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + statements[0]))
    assert "GROUP BY status" in statements[0] and "COVERING INDEX files_by_status" in plan, plan
