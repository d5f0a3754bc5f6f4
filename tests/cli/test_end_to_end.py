"""The local engine end to end through the CLI: put -> run --once -> ledger/files/notifications."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_put_then_run_once_writes_ledger_files_and_notifications(cli, tmp_path: Path) -> None:
    # GIVEN an order with prices, a document without an id, and a file copied in with a plain copy
    order = write(tmp_path / "order.json", '{"id": "o-1", "total": 19.99, "tax": 0.1, "tiny": 1e-7, "n": 1.10}')
    reading = write(tmp_path / "reading.json", '{"device": "t-7", "temp": 21.5}')
    cli("put", str(order))
    cli("put", str(reading), "--key", "incoming/sensors/red flower+1=2 ü.json")
    copied = cli.data_dir / "bucket" / "incoming" / "copied.json"
    shutil.copyfile(write(tmp_path / "src.json", '{"id": 17, "qty": 3}'), copied)

    # WHEN the pipeline runs once
    run = cli("run", "--once")

    # THEN every file is processed and each pk follows the seed's rules
    files = json.loads(cli("files", "list", "--json").stdout)
    assert {f["key"]: (f["status"], f["pk"], f["error"], f["attempts"]) for f in files} == {
        "incoming/order.json": ("processed", "o-1", None, 1),
        "incoming/sensors/red flower+1=2 ü.json": ("processed", "incoming/sensors/red flower+1=2 ü.json", None, 1),
        "incoming/copied.json": ("processed", "17", None, 1),
    }
    assert "3 files settled" in run.stderr
    # AND numbers are exact in the ledger (no float rounding)
    raw = cli("ledger", "get", "o-1", "--json").stdout
    item = json.loads(raw, parse_float=Decimal)
    assert item["payload"] == {
        "id": "o-1", "total": Decimal("19.99"), "tax": Decimal("0.1"), "tiny": Decimal("1e-7"), "n": Decimal("1.1"),
    }
    assert {k: item[k] for k in ("pk", "bucket", "key", "status")} == {
        "pk": "o-1",
        "bucket": "local",
        "key": "incoming/order.json",
        "status": "processed",
    }
    assert len(json.loads(cli("ledger", "list", "--json").stdout)) == 3
    # AND one notification per file, with the seed's subject and filterable attributes
    notes = json.loads(cli("notifications", "list", "--json").stdout)
    assert len(notes) == 3
    by_key = {n["attributes"]["key"]: n for n in notes}
    note = by_key["incoming/order.json"]
    assert note["subject"] == "S3 Event Processed"
    assert "New file processed: incoming/order.json" in note["message"]
    assert note["attributes"]["status"] == "processed" and note["attributes"]["pk"] == "o-1"
    assert note["published_at"].endswith("Z")


def test_run_once_again_and_redelivered_bytes_add_nothing(cli, tmp_path: Path) -> None:
    order = write(tmp_path / "order.json", '{"id": "o-1", "total": 5}')
    cli("put", str(order))
    cli("run", "--once")
    # WHEN the same bytes land again under the same key, and the pipeline runs twice more
    cli("put", str(order))
    cli("run", "--once")
    cli("run", "--once")
    # THEN still one row, one file version, one notification
    assert len(json.loads(cli("ledger", "list", "--json").stdout)) == 1
    assert len(json.loads(cli("files", "list", "--json").stdout)) == 1
    assert len(json.loads(cli("notifications", "list", "--json").stdout)) == 1


def test_failed_file_is_explained_and_run_once_still_exits_zero(cli, tmp_path: Path) -> None:
    cli("put", str(write(tmp_path / "bad.json", '{"id": "x", "total": ')))
    cli("put", str(write(tmp_path / "good.json", '{"id": "y"}')))
    result = cli("run", "--once")
    assert result.returncode == 0
    failed = json.loads(cli("files", "list", "--status", "failed", "--json").stdout)
    assert [(f["key"], f["status"]) for f in failed] == [("incoming/bad.json", "failed")]
    assert failed[0]["error"].startswith("truncated JSON")
    notes = json.loads(cli("notifications", "list", "--json").stdout)
    failure = next(n for n in notes if n["attributes"]["status"] == "failed")
    assert failure["subject"] == "S3 Event Failed"
    assert "incoming/bad.json" in failure["message"] and "truncated JSON" in failure["message"]
    letters = json.loads(cli("dlq", "list", "--json").stdout)
    assert [letter["key"] for letter in letters] == ["incoming/bad.json"]


@pytest.mark.parametrize("key", ["../escape.json", "/etc/passwd.json", "incoming/../../x.json", "incoming/"])
def test_put_refuses_keys_that_escape_the_bucket(cli, tmp_path: Path, key: str) -> None:
    source = write(tmp_path / "x.json", "{}")
    result = cli("put", str(source), "--key", key, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("dockline: error: invalid key")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not list((cli.data_dir / "bucket").rglob("*.json"))


def test_put_of_a_missing_file_is_one_clear_line(cli, tmp_path: Path) -> None:
    result = cli("put", str(tmp_path / "nope.json"), check=False)
    assert result.returncode == 2
    assert "is not a readable file" in result.stderr
    assert "Traceback" not in result.stderr


def test_read_commands_on_an_empty_data_dir_say_so(cli) -> None:
    for command in (["ledger", "list"], ["files", "list"], ["notifications", "list"], ["dlq", "list"]):
        result = cli(*command, check=False)
        assert result.returncode == 2, command
        assert "no dockline data in" in result.stderr
        assert "Traceback" not in result.stderr


def test_unknown_pk_and_bad_status_are_clear_errors(cli, tmp_path: Path) -> None:
    cli("put", str(write(tmp_path / "a.json", '{"id": "a"}')))
    cli("run", "--once")
    missing = cli("ledger", "get", "nope", check=False)
    assert missing.returncode == 2 and "no ledger item with pk 'nope'" in missing.stderr
    bad = cli("files", "list", "--status", "bogus", check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_invalid_config_is_one_line(cli, tmp_path: Path) -> None:
    config = write(tmp_path / "dockline.toml", '[pipeline]\non_conflict = "sometimes"\n')
    result = cli("--config", str(config), "run", "--once", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "dockline: error: [pipeline] on_conflict = 'sometimes' is not one of 'reject', 'overwrite'"
    )
    broken = write(tmp_path / "broken.toml", "[pipeline\n")
    result = cli("--config", str(broken), "run", "--once", check=False)
    assert result.returncode == 2 and "is not valid TOML" in result.stderr
    result = cli("--config", str(tmp_path / "missing.toml"), "run", "--once", check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_config_file_in_the_working_directory_is_picked_up(cli, tmp_path: Path) -> None:
    write(tmp_path / "dockline.toml", '[pipeline]\nprefix = "drop/"\nsuffixes = [".json"]\n')
    cli("put", str(write(tmp_path / "x.json", '{"id": "x"}')))
    cli("put", str(write(tmp_path / "y.json", '{"id": "y"}')), "--key", "incoming/y.json")
    cli("run", "--once")
    files = json.loads(cli("files", "list", "--json").stdout)
    assert [f["key"] for f in files] == ["drop/x.json"]


def test_demo_runs_the_whole_chain(cli) -> None:
    result = cli("demo", data=False)
    assert "What happened to each file" in result.stdout
    for status in ("processed", "failed", "duplicate", "conflict"):
        assert status in result.stdout
    assert "Traceback" not in result.stderr
