"""`dockline try`'s core (issue 9 item 6): the trial of one file through the real lifecycle
over memory parts, for the cases the CLI tests do not reach."""

from __future__ import annotations

import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path

from dockline.config import PipelineSettings, parse_settings
from dockline.models import Status
from dockline.trial import try_file

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def routed(folder: Path, transform_source: str) -> PipelineSettings:
    module = f"trial_tx_{uuid.uuid4().hex[:10]}"
    (folder / f"{module}.py").write_text(transform_source)
    text = f'[[routes]]\nname = "orders"\nprefix = "in/"\nsuffixes = [".json", ".jsonl"]\ntransform = "{module}:f"\n'
    return parse_settings(tomllib.loads(text), source=folder / "dockline.toml").pipeline


def test_trial_of_a_transient_error_reports_a_retry_and_settles_nothing(tmp_path: Path) -> None:
    source = "import dockline\ndef f(r, ctx):\n    raise dockline.TransientError('rates service timed out')\n"
    trial = try_file(b'{"id": "a"}', key="in/a.json", settings=routed(tmp_path, source), clock=lambda: NOW)
    assert trial.outcome is None and trial.retry is not None and "rates service timed out" in trial.retry
    assert trial.items == [] and trial.notifications == []
    assert [c.error for c in trial.calls] == ["rates service timed out"]


def test_trial_of_a_failing_document_shows_the_failure_notification(tmp_path: Path) -> None:
    trial = try_file(
        b'{"id": "a"}',
        key="in/a.json",
        settings=routed(tmp_path, "def f(r, ctx):\n    return 1 / 0\n"),
        clock=lambda: NOW,
    )
    assert trial.outcome is not None and trial.outcome.status is Status.FAILED
    assert trial.outcome.error is not None and "raised ZeroDivisionError: division by zero" in trial.outcome.error
    [note] = trial.notifications
    assert note.subject == "S3 Event Failed" and note.attributes["route"] == "orders"


def test_trial_of_unreadable_json_says_why_records_cannot_be_read(tmp_path: Path) -> None:
    trial = try_file(
        b'{"id": ', key="in/a.json", settings=routed(tmp_path, "def f(r, ctx):\n    return r\n"), clock=lambda: NOW
    )
    assert trial.extract_error is not None and trial.extracted == []
    assert trial.outcome is not None and trial.outcome.status is Status.FAILED and trial.calls == []


def test_trial_without_routes_uses_pipeline_and_explains_a_miss(tmp_path: Path) -> None:
    settings = PipelineSettings()
    miss = try_file(b"x", key="incoming/a.txt", settings=settings, clock=lambda: NOW)
    assert miss.route is None and miss.miss is not None
    assert (miss.miss.route, miss.miss.why) == ("default", "suffix")
    hit = try_file(b'{"id": "a", "n": 1.10}', key="incoming/a.json", settings=settings, clock=lambda: NOW)
    assert [i["pk"] for i in hit.items] == ["a"] and hit.outcome is not None and hit.outcome.pk == "a"
