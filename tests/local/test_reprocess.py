"""`dockline reprocess` on real data dirs, through the CLI in subprocesses (issue 10, item 6).

The story of the issue's "Why": a CSV settled with string values; then ``csv_schema`` and
``on_bad_record`` change, and the same bytes must be ingested again. Before, they did
nothing, and a copy under a new key was a conflict.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import drop, run_cli, write_config

CSV = "id,qty\na,1\nb,2\nc,x\n"
FIRST = '[pipeline]\nrecords = "split"\n'
TYPED = FIRST + 'csv_schema = { qty = "int" }\non_bad_record = "skip"\n'
STRICT = FIRST + 'csv_schema = { qty = "int" }\n'


def config(tmp_path: Path, text: str) -> Path:
    return write_config(tmp_path / "dockline.toml", text)


def look(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect((data_dir / "dockline.db").absolute().as_uri() + "?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def ledger(data_dir: Path) -> dict[str, Any]:
    return {str(pk): json.loads(str(payload)) for pk, payload in look(data_dir, "SELECT pk, payload FROM items")}


def reprocessed_notes(data_dir: Path) -> list[tuple[str, str]]:
    rows = look(data_dir, "SELECT message, attributes FROM notifications ORDER BY id")
    return [(str(m), str(a)) for m, a in rows if json.loads(str(a)).get("reprocessed") == "true"]


def settled_once(data_dir: Path, tmp_path: Path, files: dict[str, str], text: str = FIRST) -> Path:
    for key, body in files.items():
        drop(data_dir, key, body)
    first = config(tmp_path, text)
    done = run_cli(data_dir, "run", "--once", "--quiet", config=first)
    assert done.returncode == 0, done.stderr
    return first


def test_why_csv_schema_changed_reprocess_replaces_the_items_and_removes_the_skipped_one(
    tmp_path: Path, data_dir: Path
) -> None:
    # GIVEN a CSV settled with string values, and another file's item that stays out of it
    settled_once(data_dir, tmp_path, {"incoming/orders.csv": CSV, "incoming/other.csv": "id,qty\nz,9\n"})
    assert ledger(data_dir)["c"] == {"id": "c", "qty": "x"}
    # WHEN qty becomes an int (c cannot be one: skipped) and the file is reprocessed, twice
    typed = config(tmp_path, TYPED)
    results = [run_cli(data_dir, "reprocess", "--key", "incoming/orders", config=typed) for _ in range(2)]
    # THEN its items are replaced (no conflict), c is gone, and twice gives the same items
    for done in results:
        assert done.returncode == 0, done.stderr
        assert "reprocessed 1 file" in done.stderr and "1 processed" in done.stderr
    assert ledger(data_dir) == {"a": {"id": "a", "qty": 1}, "b": {"id": "b", "qty": 2}, "z": {"id": "z", "qty": "9"}}
    [(status, records, skipped, generation)] = look(
        data_dir, "SELECT status, records, skipped_total, generation FROM files WHERE key = 'incoming/orders.csv'"
    )
    assert (status, records, skipped, generation) == ("processed", 2, 1, 2)
    # AND each reprocess published one notification saying so
    notes = reprocessed_notes(data_dir)
    assert len(notes) == 2
    for message, attributes in notes:
        assert message.startswith("File reprocessed: incoming/orders.csv (2 records written, 1 bad records skipped")
        assert json.loads(attributes)["status"] == "processed"


def test_gone_or_changed_objects_are_not_reprocessed_and_keep_their_items(tmp_path: Path, data_dir: Path) -> None:
    settled_once(
        data_dir,
        tmp_path,
        {"incoming/gone.csv": "id,qty\ng,1\n", "incoming/changed.csv": "id,qty\nh,1\n", "incoming/kept.csv": CSV},
    )
    (data_dir / "bucket/incoming/gone.csv").unlink()
    (data_dir / "bucket/incoming/changed.csv").write_text("id,qty\nh,2\n")
    # WHEN everything is reprocessed
    done = run_cli(data_dir, "reprocess", "--all", config=config(tmp_path, TYPED))
    # THEN one line each says why, their items stay, the unchanged file is reprocessed
    assert done.returncode == 0, done.stderr
    assert "not reprocessed: incoming/gone.csv: its object is gone from the bucket; its items stay" in done.stderr
    assert "not reprocessed: incoming/changed.csv: its object changed since (now " in done.stderr
    items = ledger(data_dir)
    assert items["g"] == {"id": "g", "qty": "1"} and items["h"] == {"id": "h", "qty": "1"}
    assert items["a"] == {"id": "a", "qty": 1} and "c" not in items
    assert "reprocessed 1 file" in done.stderr


def test_dry_run_lists_what_would_run_and_writes_nothing(tmp_path: Path, data_dir: Path) -> None:
    settled_once(data_dir, tmp_path, {"incoming/orders.csv": CSV, "incoming/gone.csv": "id,qty\ng,1\n"})
    (data_dir / "bucket/incoming/gone.csv").unlink()

    def fingerprint() -> dict[str, str]:
        # A read-only SQLite reader may leave an empty -wal and a -shm index: no data.
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in data_dir.iterdir()
            if p.is_file() and not p.name.endswith("-shm") and p.stat().st_size
        }

    before = fingerprint()
    done = run_cli(data_dir, "reprocess", "--all", "--dry-run", "--json", config=config(tmp_path, TYPED))
    assert done.returncode == 0, done.stderr
    plan = {row["key"]: row for row in json.loads(done.stdout)}
    assert plan["incoming/orders.csv"]["action"] == "reprocess" and plan["incoming/orders.csv"]["records"] == 3
    assert plan["incoming/gone.csv"]["action"] == "skip" and "gone" in plan["incoming/gone.csv"]["why"]
    table = run_cli(data_dir, "reprocess", "--status", "processed", "--dry-run", config=config(tmp_path, TYPED))
    assert "would reprocess 1 of 2 selected files" in " ".join(table.stdout.split())
    assert fingerprint() == before
    assert ledger(data_dir)["c"] == {"id": "c", "qty": "x"}


def test_exit_1_when_a_reprocessed_file_fails_and_it_then_leaves_no_items(tmp_path: Path, data_dir: Path) -> None:
    settled_once(data_dir, tmp_path, {"incoming/orders.csv": CSV})
    done = run_cli(data_dir, "reprocess", "--all", config=config(tmp_path, STRICT))
    assert done.returncode == 1, done.stderr
    assert "failed: incoming/orders.csv:" in done.stderr and "Traceback" not in done.stderr
    assert ledger(data_dir) == {}
    assert look(data_dir, "SELECT key FROM dead_letters") == [("incoming/orders.csv",)]
    [(message, _attributes)] = reprocessed_notes(data_dir)
    assert message.startswith("File failed on reprocess: incoming/orders.csv")
    # AND once the settings let it through, reprocessing the failed file clears its dead letter
    again = run_cli(data_dir, "reprocess", "--status", "failed", config=config(tmp_path, TYPED))
    assert again.returncode == 0, again.stderr
    assert look(data_dir, "SELECT key FROM dead_letters") == []
    assert set(ledger(data_dir)) == {"a", "b"}


def test_usage_errors_are_one_line_with_exit_2(tmp_path: Path, data_dir: Path) -> None:
    settled_once(data_dir, tmp_path, {"incoming/orders.csv": CSV})
    for args in ((), ("--all", "--key", "x"), ("--status", "pending"), ("--all", "--json")):
        done = run_cli(data_dir, "reprocess", *args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("dockline: error: ") and done.stderr.count("\n") == 1, done.stderr


def test_a_data_dir_from_before_reprocess_gains_its_columns_and_reprocesses(tmp_path: Path, data_dir: Path) -> None:
    # GIVEN a data dir whose file has no generation columns (as written by the version before)
    settled_once(data_dir, tmp_path, {"incoming/orders.csv": CSV})
    conn = sqlite3.connect(data_dir / "dockline.db")
    conn.execute("ALTER TABLE items DROP COLUMN generation")
    conn.execute("ALTER TABLE files DROP COLUMN generation")
    conn.commit()
    conn.close()
    # WHEN it is looked at read-only (a dry run), then reprocessed
    dry = run_cli(data_dir, "reprocess", "--all", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert [row["action"] for row in json.loads(dry.stdout)] == ["reprocess"]
    done = run_cli(data_dir, "reprocess", "--all", config=config(tmp_path, TYPED))
    # THEN it works, old items counting as the first run's
    assert done.returncode == 0, done.stderr
    assert ledger(data_dir) == {"a": {"id": "a", "qty": 1}, "b": {"id": "b", "qty": 2}}


@pytest.mark.parametrize("status", ["conflict", "duplicate"])
def test_conflict_and_duplicate_files_are_reprocessed_against_the_other_files_items(
    tmp_path: Path, data_dir: Path, status: str
) -> None:
    # GIVEN a file whose ids another file wrote first (same content: duplicate; other: conflict)
    first = {"incoming/1-first.csv": "id,qty\na,1\n"}
    second = {"incoming/2-second.csv": "id,qty\na,1\n" if status == "duplicate" else "id,qty\na,2\n"}
    settled_once(data_dir, tmp_path, first)
    settled_once(data_dir, tmp_path, second)
    assert look(data_dir, "SELECT status FROM files WHERE key = 'incoming/2-second.csv'") == [(status,)]
    # WHEN it is reprocessed
    done = run_cli(data_dir, "reprocess", "--status", status, config=config(tmp_path, FIRST))
    # THEN the other file's item is not replaced: the same verdict as before
    assert done.returncode == 0, done.stderr
    assert look(data_dir, "SELECT status FROM files WHERE key = 'incoming/2-second.csv'") == [(status,)]
    assert ledger(data_dir) == {"a": {"id": "a", "qty": "1"}}
