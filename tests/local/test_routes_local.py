"""Issue 9 on the local engine: routes pick files from several prefixes, SQLite items
carry their route, notifications a route attribute, and subscriptions filter on it."""

from __future__ import annotations

import json
import sqlite3
import tomllib
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dockline.config import LocalSettings, parse_settings
from dockline.errors import ConfigError
from dockline.local.engine import LocalEngine
from tests.local.conftest import (
    SlowWebhook,
    assert_one_line_reason,
    drop,
    files_by_key,
    items,
    messages,
    run_cli,
    write_config,
)
from tests.unit.routes_corpus import (
    CONFIG,
    FILES,
    ORDER_SCHEMA,
    SHOP_KEY,
    SHOP_SKIPPED,
    TRANSFORM,
    comparable,
    expected,
    settings,
)


def routed_engine(make_engine: Callable[..., LocalEngine], folder: Path) -> LocalEngine:
    config = settings(folder)
    return make_engine(replace(config, local=LocalSettings(settle_seconds=0.0)))


def test_routes_corpus_on_sqlite_gives_the_same_items_as_memory(
    make_engine: Callable[..., LocalEngine], tmp_path: Path
) -> None:
    # GIVEN the routes corpus dropped into the local bucket under several prefixes
    engine = routed_engine(make_engine, tmp_path)
    for key, body in FILES.items():
        drop(engine, key, body)
    # WHEN one run processes the bucket
    engine.run_once()
    # THEN the scan found every routed file under every prefix, and only those
    assert set(files_by_key(engine)) == {key for key in FILES if key != "elsewhere/ignored.json"}
    # AND the SQLite items are the corpus's, each with its route (the memory test asserts the same)
    found = {pk: comparable(i["payload"], i.get("route"), i.get("record_index")) for pk, i in items(engine).items()}
    assert found == expected()
    # AND every notification names the route of its file
    assert {m["attributes"]["key"]: m["attributes"]["route"] for m in messages(engine)} == {
        "AWSLogs/111/CloudTrail/eu-west-1/ct.json.gz": "cloudtrail",
        "iot/2026/air.csv": "sensors",
        "incoming/orders.jsonl": "orders",
        "plain/readings.jsonl": "plain",
        "shop/orders.jsonl": "shop",
    }
    # AND the shop file's row counts the record its transform dropped, and the bad one
    [shop] = files_by_key(engine)[SHOP_KEY]
    assert (shop["records"], shop["dropped"], shop["skipped_total"]) == (3, 1, 1)
    assert shop["skipped"] == [{"index": 3, "reason": SHOP_SKIPPED}]


def test_routes_every_route_prefix_folder_is_made(make_engine: Callable[..., LocalEngine], tmp_path: Path) -> None:
    engine = routed_engine(make_engine, tmp_path)
    assert all((engine.bucket_dir / name).is_dir() for name in ("AWSLogs", "iot", "incoming", "plain"))


def test_routes_subscription_filter_selects_by_route_and_status(
    make_engine: Callable[..., LocalEngine], slow_webhook: Callable[[float], SlowWebhook], tmp_path: Path
) -> None:
    # GIVEN one webhook that wants processed sensor files, one (old spelling) that wants failures
    sensors, failures = slow_webhook(0.0), slow_webhook(0.0)
    (tmp_path / "order.json").write_text('{"type": "object"}')
    text = CONFIG + (
        "[local]\nsettle_seconds = 0\n"
        f'[[local.subscriptions]]\ntype = "webhook"\nurl = "{sensors.url}"\n'
        'filter = { route = ["sensors"], status = ["processed"] }\n'
        f'[[local.subscriptions]]\ntype = "webhook"\nurl = "{failures.url}"\nfilter_status = ["failed"]\n'
    )
    engine = make_engine(parse_settings(tomllib.loads(text), source=tmp_path / "dockline.toml"))
    drop(engine, "iot/a.csv", "sensor_id;temperature\n1;20\n")
    drop(engine, "iot/b.csv", "sensor_id;temperature\nx;20\n")  # fails: not an integer
    drop(engine, "plain/c.jsonl", '{"id": "c"}\n')
    # WHEN the files are processed and the deliveries sent
    engine.run_once()
    # THEN each receiver got only what its filter selects
    assert [b["attributes"]["key"] for b in sensors.bodies] == ["iot/a.csv"]
    assert [b["attributes"]["key"] for b in failures.bodies] == ["iot/b.csv"]


def test_routes_old_data_dir_gets_the_route_column_in_place(
    make_engine: Callable[..., LocalEngine], data_dir: Path, tmp_path: Path
) -> None:
    # GIVEN a data dir written before routes: its items table has no route column
    engine = make_engine()
    drop(engine, "incoming/old.json", {"id": "old"})
    engine.run_once()
    engine.db.close()
    with sqlite3.connect(data_dir / "dockline.db") as conn:
        conn.execute("ALTER TABLE items DROP COLUMN route")
    # (read-only commands do not upgrade it, and still list its items)
    reader = LocalEngine(data_dir, settings(tmp_path), read_only=True)
    assert items(reader)["old"]["route"] == "default"
    reader.db.close()
    # WHEN a new engine opens it and processes a new file
    again = routed_engine(make_engine, tmp_path)
    drop(again, "plain/new.jsonl", '{"id": "new"}\n')
    again.run_once()
    # THEN the old item is still there, read by [pipeline] (the default route), the new one has its route
    found: dict[str, Any] = items(again)
    assert found["old"]["route"] == "default"
    assert found["new"]["route"] == "plain"


def test_routes_filter_on_a_data_dir_from_before_routes_read_only(
    make_engine: Callable[..., LocalEngine], data_dir: Path, tmp_path: Path
) -> None:
    # GIVEN a data dir written before routes (no items.route), opened read-only (not upgraded)
    engine = make_engine()
    drop(engine, "incoming/old.json", {"id": "old"})
    engine.run_once()
    engine.db.close()
    with sqlite3.connect(data_dir / "dockline.db") as conn:
        conn.execute("ALTER TABLE items DROP COLUMN route")
    reader = LocalEngine(data_dir, settings(tmp_path), read_only=True)
    # WHEN its items are listed and counted by route
    from dockline.local.queries import Filter, count_items, item_rows

    by_default = [row["pk"] for row in item_rows(reader.db, Filter(route="default"))]
    by_other = [row["pk"] for row in item_rows(reader.db, Filter(route="orders"))]
    counted = count_items(reader.db, Filter(route="default"))
    reader.db.close()
    # THEN every item is the default route's (it read them all), none another's: no SQL error
    # (before: "ledger database error: no such column: i.route")
    assert (by_default, by_other, counted) == (["old"], [], 1)


def test_routes_subscription_filter_config_errors_are_one_line() -> None:
    base = CONFIG.replace('schema = "order.json"\n', "") + '[[local.subscriptions]]\ntype = "webhook"\n'
    base += 'url = "http://127.0.0.1:9/hook"\n'
    for extra, words in [
        ('filter = { route = ["nope"] }', ("filter route 'nope' is not a route", "cloudtrail")),
        ('filter = { colour = ["red"] }', ("filter 'colour' is not one of route, status",)),
        ('filter = { status = ["done"] }', ("filter status 'done' is not one of",)),
        ('filter = { route = "sensors" }', ("filter route must be a list of strings",)),
    ]:
        with pytest.raises(ConfigError) as caught:
            parse_settings(tomllib.loads(base + extra + "\n"))
        assert "\n" not in str(caught.value)
        for word in words:
            assert word in str(caught.value), (word, str(caught.value))


def test_routes_cli_run_once_with_a_routes_config_in_a_real_process(data_dir: Path, tmp_path: Path) -> None:
    # GIVEN a dockline.toml with routes and a schema beside it, and the corpus in the bucket
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    (folder / "corpus_transforms.py").write_text(TRANSFORM)
    config = write_config(folder / "dockline.toml", CONFIG)
    for key, body in FILES.items():
        drop(data_dir, key, body)
    # WHEN `dockline run --once` runs in its own process (a process whose working directory
    # is not the config's folder: the transform's module is found beside dockline.toml)
    done = run_cli(data_dir, "run", "--once", config=config)
    assert done.returncode == 0, done.stderr
    # (the shop transform raised on one record: a bad record, its traceback in the debug log only)
    assert "Traceback" not in done.stderr and "order_lines" not in done.stderr
    # THEN `ledger get` shows an item read by its route (the schema path was found beside the config)
    shown = run_cli(data_dir, "ledger", "get", "7#o-1", "--json", config=config)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["route"] == "orders"
    # AND an item made by the shop route's transform, its total exact
    made = run_cli(data_dir, "ledger", "get", "s-1", "--json", config=config)
    assert json.loads(made.stdout, parse_float=Decimal)["payload"]["total"] == Decimal("3.30")
    # AND a bad route is refused in one line naming the route and the field, no traceback
    bad = write_config(folder / "bad.toml", CONFIG.replace('id = "/eventID"', 'id = "eventID"'))
    refused = run_cli(data_dir, "run", "--once", config=bad)
    assert refused.returncode != 0
    assert_one_line_reason(refused.stderr.strip(), "'cloudtrail' id", 'must start with "/"')
