"""Issue 9 item 8: each example under examples/ runs through `dockline try` and through
`dockline run --once`, in real processes, with its own dockline.toml (schema and transform
modules found beside it) and gives the items the example promises."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import drop, run_cli
from tests.unit.examples_expected import COUNTS, EXAMPLES, ITEMS, NAMES, checked, samples


@pytest.mark.parametrize("name", NAMES)
def test_example_through_dockline_try(name: str, tmp_path: Path) -> None:
    config = EXAMPLES / name / "dockline.toml"
    data_dir = tmp_path / "data"
    items: dict[str, Any] = {}
    for key in samples(name):
        done = run_cli(data_dir, "try", str(EXAMPLES / name / "samples" / key), "--json", config=config)
        assert done.returncode == 0, done.stderr
        shown = json.loads(done.stdout, parse_float=Decimal)
        assert shown["key"] == key  # the key is the end of the path a route takes
        items |= {i["pk"]: i["payload"] for i in shown["items"]}
        outcome = shown["outcome"]
        assert (outcome["records"], outcome["dropped"], outcome["skipped_total"]) == COUNTS[name]
    assert checked(name, items) == ITEMS[name]
    assert not data_dir.exists()  # a dry run


@pytest.mark.parametrize("name", NAMES)
def test_example_through_run_once(name: str, tmp_path: Path) -> None:
    config = EXAMPLES / name / "dockline.toml"
    data_dir = tmp_path / "data"
    for key, body in samples(name).items():
        drop(data_dir, key, body)
    done = run_cli(data_dir, "run", "--once", config=config)
    assert done.returncode == 0, done.stderr
    listed = run_cli(data_dir, "ledger", "list", "--all", "--json", config=config)
    items = {i["pk"]: i["payload"] for i in json.loads(listed.stdout, parse_float=Decimal)}
    assert checked(name, items) == ITEMS[name]
    [row] = json.loads(run_cli(data_dir, "files", "list", "--json", config=config).stdout)
    assert (row["status"], row["records"], row["dropped"], row["skipped_total"]) == ("processed", *COUNTS[name])
