"""The console's route box (issue 10 left it greyed until items had routes, issue 9): the
browse API filters items by the route that read them and files by the route that takes them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.console.conftest import Console, cli_ok, drop
from tests.unit.routes_corpus import CONFIG, FILES, ORDER_SCHEMA, TRANSFORM

STATIC = Path(__file__).resolve().parents[2] / "src/dockline/console/static"


def test_browse_filters_items_and_files_by_route(tmp_path: Path, console: Callable[..., Console]) -> None:
    # GIVEN the routes corpus after one run
    (tmp_path / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    (tmp_path / "corpus_transforms.py").write_text(TRANSFORM)
    config = tmp_path / "dockline.toml"
    config.write_text(CONFIG + "[local]\nsettle_seconds = 0\n")
    data_dir = tmp_path / "data"
    for key, body in FILES.items():
        drop(data_dir, key, body)
    cli_ok(data_dir, config, "run", "--once", "--quiet")
    served = console(data_dir, config)
    # WHEN the browser asks for one route's items and another's files
    items = served.get("/api/browse/items?route=sensors").json()["rows"]
    files = served.get("/api/browse/files?route=orders").json()["rows"]
    unknown = served.get("/api/browse/files?route=nope")
    # THEN only those come back; a route the configuration does not name is a 400 with the reason
    assert sorted(r["pk"] for r in items) == ["iot/2026/air.csv#2", "iot/2026/air.csv#3"]
    assert {r["route"] for r in items} == {"sensors"}
    assert [r["key"] for r in files] == ["incoming/orders.jsonl"]
    assert unknown.status == 400 and "no such route" in unknown.json()["error"]


def test_the_route_box_is_live_and_sent() -> None:
    page = (STATIC / "index.html").read_text()
    script = (STATIC / "console.js").read_text()
    box = page[page.index('<input name="route"') :].split(">", 1)[0]
    assert "disabled" not in box
    assert '"route"]' in script  # among the names the browse form sends
