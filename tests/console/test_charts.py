"""The charts' numbers: files settled per minute by outcome, and the throughput, from one
GROUP BY over a real SQLite file filled by engines whose clock is set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dockline.config import LocalSettings, Settings
from dockline.console import data
from dockline.local.engine import LocalEngine
from tests.console.conftest import drop

NOW = datetime(2026, 12, 1, 12, 30, 40, tzinfo=UTC)


def _settle_at(data_dir: Path, moment: datetime, files: dict[str, str]) -> None:
    """Drop ``files`` and run them to the end with the engine's clock at ``moment``."""
    for key, text in files.items():
        drop(data_dir, key, text)
    engine = LocalEngine(data_dir, Settings(local=LocalSettings(settle_seconds=0.0)), clock=lambda: moment)
    try:
        engine.run_once()
    finally:
        engine.db.close()


def test_per_minute_counts_outcomes_and_throughput_of_the_last_hour(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # GIVEN files settled 2 hours ago (out of the window), 59 minutes ago (its first
    # minute), 3 minutes ago (two processed, one failed, one duplicate) and in this minute
    _settle_at(data_dir, NOW - timedelta(hours=2), {"incoming/old.json": '{"id": "old"}'})
    _settle_at(data_dir, NOW - timedelta(minutes=59), {"incoming/first.json": '{"id": "first"}'})
    _settle_at(
        data_dir,
        NOW - timedelta(minutes=3),
        {
            "incoming/a.ndjson": "".join(f'{{"id": "a{n}"}}\n' for n in range(120)),
            "incoming/b.json": '{"id": "b"}',
            "incoming/bad.json": '{"id": ',
            "incoming/b-again.json": '{"id": "b"}',
        },
    )
    _settle_at(data_dir, NOW, {"incoming/now.json": '{"id": "now"}'})
    engine = LocalEngine(data_dir, Settings(), read_only=True)
    try:
        # WHEN the chart data is read at NOW
        chart = data.per_minute(engine, now=NOW)
    finally:
        engine.db.close()
    # THEN the hour runs from 11:31 to 12:30, one slot a minute
    assert len(chart["minutes"]) == 60
    assert (chart["minutes"][0], chart["minutes"][-1]) == ("11:31", "12:30")
    out = chart["outcomes"]
    # and each file is counted once, in the minute it settled, by its outcome
    assert out["processed"][0] == 1
    assert out["processed"][56] == 2 and out["failed"][56] == 1 and out["duplicate"][56] == 1
    assert out["processed"][59] == 1
    assert sum(sum(series) for series in out.values()) == 6  # the 2-hour-old file is not there
    # and the throughput is per second over each minute: 4 files, 121 records (120 + 1; the
    # duplicate adds none, the failed file has none)
    assert chart["files_per_second"][56] == round(4 / 60, 3)
    assert chart["records_per_second"][56] == round(121 / 60, 3)
    assert sum(1 for rate in chart["files_per_second"] if rate) == 3
