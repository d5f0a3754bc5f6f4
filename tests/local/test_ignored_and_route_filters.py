"""Issue 9 item 7 (ignored keys are visible) and the route filters issue 10 promised
(`ledger list/export --route`, `files list --route`), in real processes on the routes corpus."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import drop, run_cli, write_config
from tests.unit.routes_corpus import CONFIG, FILES, ORDER_SCHEMA, TRANSFORM

# Keys no route takes, each missing in its own way; "elsewhere/" is in no folder a route's
# prefix could name (even ignoring case), so the scan never lists it.
STRAYS = {
    "incoming/notes.txt": ("orders", "suffix"),
    "Incoming/late.json": ("orders", "case"),
    "orders.json": ("orders", "prefix"),
}


@pytest.fixture
def ran(tmp_path: Path) -> tuple[Path, Path, Any]:
    """The corpus and the strays in the bucket, after one `run --once`."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    (folder / "corpus_transforms.py").write_text(TRANSFORM)
    config = write_config(folder / "dockline.toml", CONFIG)
    data_dir = tmp_path / "data"
    for key, body in FILES.items():
        drop(data_dir, key, body)
    for key in STRAYS:
        drop(data_dir, key, '{"id": "stray"}')
    done = run_cli(data_dir, "run", "--once", config=config)
    assert done.returncode == 0, done.stderr
    return data_dir, config, done


def cli_json(data_dir: Path, config: Path, *args: str) -> Any:
    done = run_cli(data_dir, *args, "--json", config=config)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_why7_run_once_ends_with_the_count_of_files_no_route_takes(ran: tuple[Path, Path, Any]) -> None:
    _data_dir, _config, done = ran
    assert done.stderr.strip().splitlines()[-1] == "3 files matched no route: dockline files list --ignored"


def test_why7_files_list_ignored_names_the_nearest_route_and_why(ran: tuple[Path, Path, Any]) -> None:
    data_dir, config, _done = ran
    rows = cli_json(data_dir, config, "files", "list", "--ignored")
    assert {r["key"]: (r["nearest_route"], r["why"]) for r in rows} == STRAYS
    by_key = {r["key"]: r["detail"] for r in rows}
    assert by_key["incoming/notes.txt"].startswith(".txt is not one of route 'orders''s suffixes")
    assert "only if case is ignored" in by_key["Incoming/late.json"]
    # AND the table form says the same, literally
    table = run_cli(data_dir, "files", "list", "--ignored", config=config)
    assert "3 files no route takes" in table.stdout and "Incoming/late.json" in table.stdout


def test_why7_ignored_files_are_never_hashed_and_a_rescan_writes_nothing_new(ran: tuple[Path, Path, Any]) -> None:
    data_dir, config, _done = ran
    db = sqlite3.connect(data_dir / "dockline.db")
    # THEN no ignored key is in the stat cache: none was opened or hashed
    assert not {k for (k,) in db.execute("SELECT key FROM seen")} & set(STRAYS)
    before = db.execute("SELECT key, seen_at FROM ignored ORDER BY key").fetchall()
    # WHEN the bucket is scanned again unchanged
    again = run_cli(data_dir, "run", "--once", config=config)
    # THEN the list is as it was (not rewritten), and the summary still counts them
    assert db.execute("SELECT key, seen_at FROM ignored ORDER BY key").fetchall() == before
    assert "3 files matched no route" in again.stderr


def test_why7_a_stray_that_is_fixed_leaves_the_ignored_list(ran: tuple[Path, Path, Any]) -> None:
    data_dir, config, _done = ran
    (data_dir / "bucket/incoming/notes.txt").rename(data_dir / "bucket/incoming/notes.json")
    again = run_cli(data_dir, "run", "--once", config=config)
    assert "2 files matched no route" in again.stderr
    assert "incoming/notes.txt" not in {r["key"] for r in cli_json(data_dir, config, "files", "list", "--ignored")}


def test_route_filter_on_ledger_list_and_export(ran: tuple[Path, Path, Any]) -> None:
    data_dir, config, _done = ran
    listed = cli_json(data_dir, config, "ledger", "list", "--route", "sensors")
    assert sorted(i["pk"] for i in listed) == ["iot/2026/air.csv#2", "iot/2026/air.csv#3"]
    exported = run_cli(data_dir, "ledger", "export", "--route", "cloudtrail", config=config)
    assert [json.loads(line)["pk"] for line in exported.stdout.splitlines()] == ["ev-1", "ev-2"]
    assert cli_json(data_dir, config, "ledger", "list", "--route", "nope") == []


def test_route_filter_on_files_list(ran: tuple[Path, Path, Any]) -> None:
    data_dir, config, _done = ran
    assert [f["key"] for f in cli_json(data_dir, config, "files", "list", "--route", "orders")] == [
        "incoming/orders.jsonl"
    ]
    # AND --key narrows within the route; one outside its prefix gives nothing
    assert cli_json(data_dir, config, "files", "list", "--route", "sensors", "--key", "iot/2026/") != []
    assert cli_json(data_dir, config, "files", "list", "--route", "sensors", "--key", "plain/") == []
    # AND --ignored --route keeps the strays nearest that route
    assert len(cli_json(data_dir, config, "files", "list", "--ignored", "--route", "orders")) == 3
    # AND a route the configuration does not name is one line, exit 2
    bad = run_cli(data_dir, "files", "list", "--route", "nope", config=config)
    assert bad.returncode == 2 and bad.stderr.startswith("dockline: error: --route 'nope': no such route")


def test_route_filter_default_route_finds_items_written_without_routes(tmp_path: Path) -> None:
    # GIVEN a configuration without [[routes]]: its items' route column is NULL
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "dockline.toml")
    drop(data_dir, "incoming/a.json", '{"id": "a"}')
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    # THEN --route default finds them, as `ledger get` names their route
    assert [i["pk"] for i in cli_json(data_dir, config, "ledger", "list", "--route", "default")] == ["a"]
    assert [f["key"] for f in cli_json(data_dir, config, "files", "list", "--route", "default")] == ["incoming/a.json"]


def test_route_filter_on_reprocess_runs_one_routes_files_with_the_changed_transform(
    ran: tuple[Path, Path, Any],
) -> None:
    data_dir, config, _done = ran
    # GIVEN the dry run selects only the files the shop route takes
    plan = cli_json(data_dir, config, "reprocess", "--route", "shop", "--dry-run")
    assert [(s["key"], s["action"]) for s in plan] == [("shop/orders.jsonl", "reprocess")]
    # WHEN the shop transform changes and that route is reprocessed
    module = config.parent / "corpus_transforms.py"
    module.write_text(TRANSFORM.replace('"exact":', '"v": 2, "exact":'))
    done = run_cli(data_dir, "reprocess", "--route", "shop", config=config)
    assert done.returncode == 0, done.stderr
    # THEN its items carry the new field, and no other route's file was run again
    items = {i["pk"]: i for i in cli_json(data_dir, config, "ledger", "list", "--all")}
    assert {pk: items[pk]["payload"].get("v") for pk in ("s-1", "s-2", "s-3")} == {"s-1": 2, "s-2": 2, "s-3": 2}
    assert "v" not in items["7#o-1"]["payload"]
    notes = cli_json(data_dir, config, "notifications", "list")
    assert [n["attributes"]["key"] for n in notes if n["attributes"].get("reprocessed")] == ["shop/orders.jsonl"]
    # AND a route the configuration does not name is one line, exit 2
    bad = run_cli(data_dir, "reprocess", "--route", "nope", config=config)
    assert bad.returncode == 2 and bad.stderr.startswith("dockline: error: --route 'nope': no such route")
