"""Issue 9 item 6: `dockline try FILE [--key KEY] [--json]`, a dry run of the whole chain on
one file, in a real process: it shows every step and writes and sends nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.local.conftest import SlowWebhook, run_cli, write_config
from tests.unit.routes_corpus import CONFIG, FILES, ORDER_SCHEMA, TRANSFORM


def project(tmp_path: Path, extra: str = "") -> tuple[Path, Path, Path]:
    """A folder with the routes corpus's dockline.toml, schema and transform module, the
    corpus's files under samples/, and a data dir that does not exist."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    (folder / "corpus_transforms.py").write_text(TRANSFORM)
    config = write_config(folder / "dockline.toml", CONFIG + extra)
    for key, body in FILES.items():
        path = folder / "samples" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return folder, config, tmp_path / "data"


def tried(data_dir: Path, config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = run_cli(data_dir, "try", *args, "--json", config=config)
    assert done.stderr == "", done.stderr
    return done.returncode, json.loads(done.stdout, parse_float=Decimal)


def test_try_shows_route_records_transform_items_and_notification(tmp_path: Path) -> None:
    # GIVEN the shop route (id /sku, a transform that splits, drops and raises)
    folder, config, data_dir = project(tmp_path)
    # WHEN its file is tried, its key taken from the end of its path that a route takes
    code, shown = tried(data_dir, config, str(folder / "samples/shop/orders.jsonl"))
    # THEN the route, the four records as extracted, and each transform call are shown
    assert code == 0
    assert (shown["key"], shown["route"]) == ("shop/orders.jsonl", "shop")
    assert [r["record"]["order"] for r in shown["extracted"]] == ["A", "T", "B", "C"]
    calls = {c["index"]: c for c in shown["transform_calls"]}
    assert [o["sku"] for o in calls[1]["output"]] == ["s-1", "s-2"]
    assert calls[2]["output"] is None and calls[2]["error"] is None  # dropped
    assert "raised TypeError" in calls[3]["error"]
    # AND the exact items that a run would write, with their pks and exact totals
    assert {i["pk"]: i["payload"]["total"] for i in shown["items"]} == {
        "s-1": Decimal("3.3"),
        "s-2": Decimal("0.2"),
        "s-3": Decimal("0.3"),
    }
    # AND the outcome and the notification a run would send
    assert shown["outcome"]["status"] == "processed"
    assert (shown["outcome"]["dropped"], shown["outcome"]["skipped_total"]) == (1, 1)
    [note] = shown["notifications"]
    assert note["attributes"]["route"] == "shop" and note["attributes"]["dropped"] == "1"


def test_try_shows_validation_results(tmp_path: Path) -> None:
    folder, config, data_dir = project(tmp_path)
    code, shown = tried(data_dir, config, str(folder / "samples/incoming/orders.jsonl"))
    assert code == 0 and shown["route"] == "orders"
    assert [v["problem"] for v in shown["validation"]] == [None, "/order/qty: 0 is less than the minimum of 1", None]
    assert [i["pk"] for i in shown["items"]] == ["7#o-1", "8#o-1"]


def test_try_writes_nothing_and_sends_nothing(tmp_path: Path, slow_webhook: Callable[[float], SlowWebhook]) -> None:
    # GIVEN a config with a real webhook subscription, and no data dir
    hook = slow_webhook(0.0)
    folder, config, data_dir = project(tmp_path, f'[[local.subscriptions]]\ntype = "webhook"\nurl = "{hook.url}"\n')
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    # WHEN every sample is tried, in text and in JSON
    for key in FILES:
        for form in ((), ("--json",)):
            run_cli(data_dir, "try", str(folder / "samples" / key), *form, config=config)
    # THEN no data dir was made, no file anywhere was added or changed, the receiver got nothing
    assert not data_dir.exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "__pycache__" not in p.parts) == before
    assert hook.bodies == []


def test_try_without_a_matching_route_names_the_nearest_and_why(tmp_path: Path) -> None:
    folder, config, data_dir = project(tmp_path)
    (folder / "samples/incoming/Orders.JSON").write_text('{"id": 1}')
    code, shown = tried(data_dir, config, str(folder / "samples/incoming/Orders.JSON"), "--key", "incoming/Orders.JSON")
    # THEN exit 1, no route, and the nearest route with the reason: only the case differs
    assert code == 1 and shown["route"] is None
    assert (shown["no_route"]["nearest"], shown["no_route"]["why"]) == ("orders", "case")
    text = run_cli(data_dir, "try", str(folder / "samples/elsewhere/ignored.json"), config=config)
    assert text.returncode == 1
    assert "route: none matched; nearest" in text.stdout and "(prefix)" in text.stdout


def test_try_key_option_chooses_the_route(tmp_path: Path) -> None:
    # GIVEN a sensors CSV tried under another key: the plain route's suffix does not fit
    folder, config, data_dir = project(tmp_path)
    code, shown = tried(data_dir, config, str(folder / "samples/iot/2026/air.csv"), "--key", "iot/x.csv")
    assert code == 0 and shown["key"] == "iot/x.csv" and shown["route"] == "sensors"
    assert [i["payload"]["humidity"] for i in shown["items"]] == [None, Decimal("40.25")]


def test_try_text_output_is_literal_and_one_line_per_step(tmp_path: Path) -> None:
    folder, config, data_dir = project(tmp_path)
    (folder / "samples/plain/evil.jsonl").write_text('{"id": "[red]x\\u001b[2J"}\n')
    done = run_cli(data_dir, "try", str(folder / "samples/plain/evil.jsonl"), config=config)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "[red]x" in done.stdout
    assert "items that would be written: 1" in done.stdout and "nothing was written or sent" in done.stdout


def test_try_unreadable_file_is_one_line(tmp_path: Path) -> None:
    folder, config, data_dir = project(tmp_path)
    done = run_cli(data_dir, "try", str(folder / "nope.json"), config=config)
    assert done.returncode == 2
    assert done.stderr.startswith("dockline: error: cannot read") and done.stderr.count("\n") == 1
