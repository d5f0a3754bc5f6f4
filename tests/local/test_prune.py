"""Issue 10, item 8: ``dockline prune --notifications-older-than`` (real SQLite, a real webhook)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockline.config import LocalSettings, Settings, WebhookSubscription
from dockline.local.engine import LocalEngine
from dockline.local.prune import prune_notifications
from dockline.pipeline import iso
from tests.local.conftest import drop, run_cli, write_config
from tests.local.test_deliveries_durable import Clock, Hook, hook  # noqa: F401 - the fixture


def _counts(engine: LocalEngine) -> dict[str, Any]:
    rows = {t: engine.db.query(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("items", "files", "dead_letters")}
    rows["files_by_status"] = sorted(tuple(r) for r in engine.db.query("SELECT key, status FROM files"))
    return rows


def _deliveries(engine: LocalEngine) -> dict[str, list[str]]:
    """The state of each notification's deliveries, by the file key it tells about."""
    return {m["attributes"]["key"]: [d["status"] for d in m["deliveries"]] for m in engine.topic.messages()}


@pytest.fixture
def old_history(tmp_path: Path, hook: Hook) -> Iterator[tuple[LocalEngine, Hook]]:  # noqa: F811
    """GIVEN, 40 days ago: two notifications delivered, one whose delivery failed for good
    (HTTP 400), one still retrying (HTTP 500), and one failed file with a dead letter."""
    clock = Clock()
    clock.now = datetime.now(UTC) - timedelta(days=40)
    settings = Settings(local=LocalSettings(settle_seconds=0.0, subscriptions=(WebhookSubscription(url=hook.url),)))
    engine = LocalEngine(tmp_path / "data", settings, clock=clock)
    for key, status in [("a.json", 204), ("b.json", 204), ("c.json", 400), ("d.json", 500)]:
        hook.status = status
        drop(engine, f"incoming/{key}", {"id": key})
        engine.run_once()
    drop(engine, "incoming/broken.json", "{")
    hook.status = 204
    engine.run_once()
    assert _deliveries(engine) == {
        "incoming/a.json": ["delivered"],
        "incoming/b.json": ["delivered"],
        "incoming/c.json": ["failed"],
        "incoming/d.json": ["retrying"],
        "incoming/broken.json": ["delivered"],
    }
    yield engine, hook
    engine.db.close()


def test_item8_prune_deletes_old_settled_notifications_only(
    old_history: tuple[LocalEngine, Hook], tmp_path: Path
) -> None:
    engine, _hook = old_history
    data_dir = engine.data_dir
    config = write_config(tmp_path / "dockline.toml")  # no subscriptions: the CLI sends nothing
    # and a recent file, with its notification (no deliveries: nothing subscribed now)
    drop(data_dir, "incoming/recent.json", {"id": "recent"})
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    before = _counts(engine)

    # WHEN pruning notifications older than 30 days, first as a dry run
    dry = run_cli(data_dir, "prune", "--notifications-older-than", "30d", "--dry-run", config=config)
    # THEN it counts and changes nothing
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would delete 4 notifications and 4 deliveries published before ")
    assert "kept 1 older ones with deliveries still to send" in dry.stdout
    assert len(engine.topic.messages()) == 6

    # WHEN it runs for real
    done = run_cli(data_dir, "prune", "--notifications-older-than", "30d", config=config)
    # THEN the old delivered and failed ones are gone with their deliveries; the retrying
    # one and the recent one stay; items, files (settled or not) and dead letters are untouched
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 4 notifications and 4 deliveries published before ")
    assert _deliveries(engine) == {"incoming/d.json": ["retrying"], "incoming/recent.json": []}
    assert engine.db.query("SELECT COUNT(*) FROM deliveries")[0][0] == 1
    assert _counts(engine) == before

    # and pruning again deletes nothing more
    again = run_cli(data_dir, "prune", "--notifications-older-than", "30d", config=config)
    assert again.stdout.startswith("deleted 0 notifications and 0 deliveries")


def test_item8_prune_works_in_chunks_of_one_transaction_each(old_history: tuple[LocalEngine, Hook]) -> None:
    engine, _hook = old_history
    # WHEN pruning one notification per transaction
    done = prune_notifications(engine.db, before=iso(datetime.now(UTC) - timedelta(days=30)), chunk=1)
    # THEN the result is the same as in one go
    assert (done.notifications, done.deliveries, done.kept_unsettled) == (4, 4, 1)
    assert _deliveries(engine) == {"incoming/d.json": ["retrying"]}


@pytest.mark.parametrize("age", ["30", "0d", "-3d", "3 days", "1y"])
def test_item8_prune_refuses_an_unclear_age_in_one_line(tmp_path: Path, age: str) -> None:
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "dockline.toml")
    assert run_cli(data_dir, "run", "--once", config=config).returncode == 0
    done = run_cli(data_dir, "prune", "--notifications-older-than", age, config=config)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("dockline: error: --notifications-older-than")
