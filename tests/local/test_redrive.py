"""Dead letters, redrive and re-delivery on the local engine (issue 4, sections 1, 2, 5).

Redrive is driven through the CLI as a user would (``dlq list/show/redrive``);
re-delivery and conflict rules through ``LocalEngine`` and ``put``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dockline.config import PipelineSettings
from dockline.local.engine import LocalEngine
from dockline.local.queries import list_files, list_items
from dockline.models import ConflictPolicy, Status
from tests.local.conftest import (
    assert_one_line_reason,
    cli_json,
    drop,
    files_by_key,
    items,
    letters,
    messages,
    run_cli,
    settings,
    the_file,
    write_config,
)

BROKEN = b'{"id": "order-9", "total": 12.50, "lines": [1, 2'
FIXED = b'{"id": "order-9", "total": 12.50, "lines": [1, 2]}'


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "dockline.toml")


def dead_lettered(make_engine: Callable[..., LocalEngine], data: bytes = BROKEN) -> LocalEngine:
    """GIVEN: incoming/order.json landed, was run, failed and dead-lettered."""
    engine = make_engine()
    drop(engine, "incoming/order.json", data)
    engine.run_once()
    assert len(letters(engine)) == 1
    return engine


def snapshot(engine: LocalEngine) -> list[Any]:
    """Everything a redrive could change: files, items, notifications, dead letters."""
    return [
        list_files(engine.db),
        list_items(engine.db),
        engine.topic.messages(),
        list(engine.dead_letters.list()),
    ]


def fix_in_place(engine: LocalEngine, data: bytes = FIXED) -> None:
    """The user edits the file where it is, as an editor would."""
    (engine.bucket_dir / "incoming" / "order.json").write_bytes(data)


def test_dlq_list_and_show_explain_the_failure_in_plain_words(
    make_engine: Callable[..., LocalEngine], data_dir: Path
) -> None:
    # GIVEN a malformed file that was dead-lettered
    engine = dead_lettered(make_engine)
    # WHEN the DLQ is listed
    dlq = cli_json(data_dir, "dlq", "list")
    # THEN the letter names the object and says what is wrong, on one line
    assert len(dlq) == 1
    letter = dlq[0]
    assert letter["key"] == "incoming/order.json"
    assert letter["attempts"] == 1
    assert_one_line_reason(letter["reason"], "truncated JSON")
    assert letter["reason"] == the_file(engine, "incoming/order.json")["error"]
    # ... and `dlq show ID` says the same
    shown = run_cli(data_dir, "dlq", "show", letter["id"])
    assert shown.returncode == 0 and letter["reason"] in shown.stdout and "incoming/order.json" in shown.stdout


def test_a_fixed_file_is_processed_by_redrive_and_its_letter_removed(
    make_engine: Callable[..., LocalEngine], data_dir: Path, config: Path
) -> None:
    # GIVEN a dead-lettered file, then fixed in place
    engine = dead_lettered(make_engine)
    fix_in_place(engine)
    # WHEN every letter is redriven
    done = run_cli(data_dir, "dlq", "redrive", "--all", config=config)
    # THEN the new version is processed, the letter is gone, the item is in the ledger
    assert done.returncode == 0, done.stderr
    assert "process the new version -> processed" in done.stdout
    assert letters(engine) == []
    got = json.loads(run_cli(data_dir, "ledger", "get", "order-9", "--json").stdout, parse_float=Decimal)
    assert got["payload"] == {"id": "order-9", "total": Decimal("12.50"), "lines": [1, 2]}
    # ... each version keeps its own state, and each got its notification
    assert sorted(row["status"] for row in files_by_key(engine)["incoming/order.json"]) == ["failed", "processed"]
    assert [m["attributes"]["status"] for m in messages(engine)] == ["failed", "processed"]
    # ... and a later run has nothing left to do
    assert engine.run_once().outcomes == []
    assert len(messages(engine)) == 2


def test_redrive_by_id_touches_only_that_letter(
    make_engine: Callable[..., LocalEngine], data_dir: Path, config: Path
) -> None:
    # GIVEN two dead-lettered files, both fixed
    engine = dead_lettered(make_engine)
    drop(engine, "incoming/other.json", "{nope")
    engine.run_once()
    fix_in_place(engine)
    drop(engine, "incoming/other.json", '{"id": "other"}')
    letter = letters(engine, "incoming/order.json")[0]
    # WHEN one is redriven by its id
    done = run_cli(data_dir, "dlq", "redrive", letter.id, config=config)
    # THEN only that one left the DLQ
    assert done.returncode == 0, done.stderr
    assert [x.ref.key for x in letters(engine)] == ["incoming/other.json"]
    assert sorted(items(engine)) == ["order-9"]


def test_dry_run_changes_nothing(make_engine: Callable[..., LocalEngine], data_dir: Path, config: Path) -> None:
    # GIVEN a dead-lettered file, fixed in place
    engine = dead_lettered(make_engine)
    fix_in_place(engine)
    before = snapshot(engine)
    # WHEN a redrive is only planned
    done = run_cli(data_dir, "dlq", "redrive", "--all", "--dry-run", config=config)
    # THEN it says what it would do and nothing changed
    assert done.returncode == 0, done.stderr
    assert "would process the new version: incoming/order.json" in done.stdout
    assert snapshot(engine) == before


def test_redriving_an_unchanged_bad_file_keeps_it_in_the_dlq(
    make_engine: Callable[..., LocalEngine], data_dir: Path, config: Path
) -> None:
    # GIVEN a dead-lettered file nobody fixed
    engine = dead_lettered(make_engine)
    letter = letters(engine)[0]
    # WHEN it is redriven
    done = run_cli(data_dir, "dlq", "redrive", "--all", config=config)
    # THEN it fails again and stays in the DLQ with its attempts counted; still one row for the version
    assert done.returncode == 0, done.stderr
    assert "reprocess (unchanged) -> failed: truncated JSON" in done.stdout
    again = letters(engine)
    assert [(x.id, x.reason, x.attempts) for x in again] == [(letter.id, letter.reason, 2)]
    row = the_file(engine, "incoming/order.json")
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert items(engine) == {}


def test_redriving_a_deleted_file_skips_it(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN a dead-lettered file that was then deleted
    engine = dead_lettered(make_engine)
    (engine.bucket_dir / "incoming" / "order.json").unlink()
    # WHEN every letter is redriven
    results = engine.redrive(engine.plan_redrive(None))
    # THEN it is skipped, saying why, and the letter is kept
    assert [(step.action, outcome) for step, outcome in results] == [("skip: the object no longer exists", None)]
    assert len(letters(engine)) == 1


def test_a_letter_for_a_file_already_fixed_by_a_run_is_cleared_without_a_second_message(
    make_engine: Callable[..., LocalEngine],
) -> None:
    # GIVEN a dead-lettered file fixed in place and picked up by an ordinary run
    engine = dead_lettered(make_engine)
    fix_in_place(engine)
    engine.run_once()
    assert len(messages(engine)) == 2
    # WHEN the letter is redriven
    engine.redrive(engine.plan_redrive(None))
    # THEN it is removed, and no notification is sent again
    assert letters(engine) == []
    assert len(messages(engine)) == 2


def test_bad_redrive_requests_are_one_line_errors(
    make_engine: Callable[..., LocalEngine], data_dir: Path, config: Path
) -> None:
    # GIVEN a data dir with one dead letter
    engine = dead_lettered(make_engine)
    before = snapshot(engine)
    for args, words in [
        (("dlq", "redrive", "local/incoming/nope.json@abc"), "no dead letter with id"),
        (("dlq", "show", "local/incoming/nope.json@abc"), "no dead letter with id"),
        (("dlq", "redrive"), "name one dead letter ID, or pass --all"),
    ]:
        # WHEN a letter that does not exist (or none at all) is asked for
        done = run_cli(data_dir, *args, config=config)
        # THEN one line on stderr, exit code 2, nothing changed
        assert done.returncode == 2, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], done.stderr
        assert "Traceback" not in done.stderr
    assert snapshot(engine) == before


# -- re-delivery and idempotency ---------------------------------------------------------
def test_the_same_bytes_put_twice_under_one_key_give_one_row_and_one_message(
    tmp_path: Path, engine: LocalEngine, data_dir: Path
) -> None:
    # GIVEN a file put and processed
    source = tmp_path / "order.json"
    source.write_bytes(FIXED)
    assert run_cli(data_dir, "put", str(source)).returncode == 0
    engine.run_once()
    # WHEN the very same bytes are put again under the same key (a new file on disk), and run
    assert run_cli(data_dir, "put", str(source)).returncode == 0
    summary = engine.run_once()
    # THEN nothing was processed again: one version, one item, one notification
    assert summary.outcomes == []
    assert [row["status"] for row in files_by_key(engine)["incoming/order.json"]] == ["processed"]
    assert list(items(engine)) == ["order-9"]
    assert len(messages(engine)) == 1


def test_delivering_one_version_again_is_a_no_op(engine: LocalEngine) -> None:
    # GIVEN a processed file
    drop(engine, "incoming/a.json", {"id": "a-1"})
    ref = engine.scan().ready[0]
    engine.process([ref], workers=1)
    # WHEN the same object version is delivered again, twice, in parallel
    summary = engine.process([ref, ref], workers=2)
    # THEN nothing new: one row, one notification, and the version's state unchanged
    assert {o.status for o in summary.outcomes} == {Status.PROCESSED}
    assert list(items(engine)) == ["a-1"]
    assert len(messages(engine)) == 1
    assert the_file(engine, "incoming/a.json")["attempts"] == 1


def test_identical_content_under_another_key_is_a_silent_duplicate(engine: LocalEngine) -> None:
    # GIVEN a processed document, then the same document under another key
    drop(engine, "incoming/a.json", {"id": "a-1", "v": 1})
    engine.run_once()
    drop(engine, "incoming/copy-of-a.json", {"v": 1, "id": "a-1"})  # same content, other key order
    # WHEN the engine runs
    engine.run_once()
    # THEN it is a duplicate: no new row, no notification
    row = the_file(engine, "incoming/copy-of-a.json")
    assert row["status"] == "duplicate"
    assert_one_line_reason(row["error"], "already in the ledger with identical content")
    assert items(engine)["a-1"]["key"] == "incoming/a.json"
    assert len(messages(engine)) == 1
    assert letters(engine) == []


def test_new_content_under_the_same_key_is_a_new_version(engine: LocalEngine) -> None:
    # GIVEN a processed file
    path = drop(engine, "incoming/a.json", {"id": "a-1", "v": 1})
    engine.run_once()
    # WHEN it is replaced by a document with another id, and then by one reusing the first id
    drop(engine, "incoming/a.json", {"id": "a-2", "v": 2})
    engine.run_once()
    drop(engine, "incoming/a.json", {"id": "a-1", "v": 3})
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    engine.run_once()
    # THEN each version has its own state: processed, processed, conflict (the first is kept)
    versions = [row["status"] for row in files_by_key(engine)["incoming/a.json"]]
    assert sorted(versions) == ["conflict", "processed", "processed"]
    assert items(engine)["a-1"]["payload"] == {"id": "a-1", "v": 1}
    assert items(engine)["a-2"]["payload"] == {"id": "a-2", "v": 2}
    conflict = [m for m in messages(engine) if m["attributes"]["status"] == "conflict"]
    assert len(conflict) == 1 and conflict[0]["subject"] == "S3 Event Failed"
    assert "different content" in conflict[0]["message"]


def test_a_rewrite_that_keeps_size_and_mtime_is_still_a_new_version(engine: LocalEngine) -> None:
    # GIVEN a processed file
    path = drop(engine, "incoming/a.json", {"id": "a-1", "v": 1})
    engine.run_once()
    old = path.stat()
    # WHEN it is rewritten in place with new content of the same size, mtime restored (cp -p, rsync -t)
    path.write_bytes(json.dumps({"id": "a-2", "v": 1}).encode())
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_ino) == (old.st_size, old.st_ino)
    engine.run_once()
    # THEN the new content was noticed and processed
    assert sorted(items(engine)) == ["a-1", "a-2"]


def overwrite_engine(make_engine: Callable[..., LocalEngine]) -> LocalEngine:
    return make_engine(settings(pipeline=PipelineSettings(on_conflict=ConflictPolicy.OVERWRITE)))


def set_mtime(path: Path, seconds: int) -> None:
    os.utime(path, (seconds, seconds))


def test_overwrite_newer_version_of_a_key_replaces_an_older_one_does_not(
    make_engine: Callable[..., LocalEngine],
) -> None:
    # GIVEN on_conflict = "overwrite" and a processed file written at t
    engine = overwrite_engine(make_engine)
    path = drop(engine, "incoming/a.json", {"id": "a-1", "v": "first"})
    set_mtime(path, 1_700_000_000)
    engine.run_once()
    # WHEN a newer version (t + 1 s) arrives
    drop(engine, "incoming/a.json", {"id": "a-1", "v": "newer"})
    set_mtime(path, 1_700_000_001)
    engine.run_once()
    # THEN it replaced the item
    assert items(engine)["a-1"]["payload"]["v"] == "newer"
    # WHEN a version with an older time (t - 1 s: a late, out-of-order delivery) arrives
    drop(engine, "incoming/a.json", {"id": "a-1", "v": "stale"})
    set_mtime(path, 1_699_999_999)
    engine.run_once()
    # THEN it does not overwrite the newer one: it is a conflict, and still one row
    assert items(engine)["a-1"]["payload"]["v"] == "newer"
    statuses = sorted(row["status"] for row in files_by_key(engine)["incoming/a.json"])
    assert statuses == ["conflict", "processed", "processed"]
    assert len(items(engine)) == 1


def test_overwrite_across_keys_follows_event_time(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN on_conflict = "overwrite" and the same id in three files with different times
    engine = overwrite_engine(make_engine)
    set_mtime(drop(engine, "incoming/middle.json", {"id": "x", "v": "middle"}), 1_700_000_100)
    engine.run_once()
    set_mtime(drop(engine, "incoming/older.json", {"id": "x", "v": "older"}), 1_700_000_000)
    set_mtime(drop(engine, "incoming/newest.json", {"id": "x", "v": "newest"}), 1_700_000_200)
    # WHEN they are processed
    engine.run_once()
    # THEN the newest wins, the older one is a conflict
    assert items(engine)["x"]["payload"]["v"] == "newest"
    assert the_file(engine, "incoming/older.json")["status"] == "conflict"
    assert the_file(engine, "incoming/newest.json")["status"] == "processed"


def test_a_file_changed_between_scan_and_read_is_not_taken_for_the_old_version(tmp_path: Path) -> None:
    # GIVEN a scanned file (its version is the hash of these bytes)
    from dataclasses import replace as _replace

    from dockline.config import LocalSettings, Settings
    from dockline.local.engine import LocalEngine

    engine = LocalEngine(tmp_path / "data", _replace(Settings(), local=LocalSettings(settle_seconds=0)))
    path = engine.bucket_dir / "incoming" / "a.json"
    path.parent.mkdir(parents=True, exist_ok=True)  # the engine makes incoming/ (issue 10)
    path.write_text('{"id": "a", "v": 1}')
    [ref] = engine.scan().ready
    # WHEN its content changes before it is read
    path.write_text('{"id": "a", "v": 2}')
    outcome = engine.pipeline.process(ref)
    # THEN the old version is superseded (issue 8, item 15: it used to end failed, with a
    # dead letter and a failure notification), and nothing of the new content is ledgered under it
    assert outcome.status.value == "superseded"
    assert "changed while it was being read" in (outcome.error or "")
    assert engine.db.query("SELECT count(*) AS n FROM items")[0]["n"] == 0
    assert list(engine.dead_letters.list()) == []
    assert engine.topic.messages() == []
    # AND the next run processes the new content as its own version
    summary = engine.run_once()
    assert [(o.status.value, o.pk) for o in summary.outcomes] == [("processed", "a")]
