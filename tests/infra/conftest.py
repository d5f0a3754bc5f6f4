"""Synthesize each stack variant once per session (jsii starts Node once; each synth is < 1 s after)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from dockline.config import AwsSettings, AwsSubscription, PipelineSettings, Settings, load_settings
from tests.unit.routes_corpus import CONFIG as ROUTES_CONFIG
from tests.unit.routes_corpus import ORDER_SCHEMA, TRANSFORM

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# Every value differs from its default, so a test that checks it proves it comes from settings.
CUSTOM_AWS = AwsSettings(
    stack_name="Ledgerline",
    bucket_name="ledgerline-landing-test",
    table_name="ledger",
    topic_name="ledger-notify",
    trigger="queue",
    reserved_concurrency=7,
    timeout_seconds=45,
    memory_mb=1024,
    batch_size=25,
    batching_window_seconds=10,
    max_receive_count=3,
    retry_attempts=1,
    max_event_age_seconds=600,
    tracing=False,
    log_retention_days=14,
    removal_policy="destroy",
    deletion_protection=False,
    alarm_email="oncall@example.com",
    subscriptions=(
        AwsSubscription("email", "team@example.com"),
        AwsSubscription("sms", "+15550100"),
        AwsSubscription("https", "https://hooks.example.com/dockline"),
        AwsSubscription("sqs", "arn:aws:sqs:us-east-1:111122223333:downstream"),
    ),
)
CUSTOM_PIPELINE = PipelineSettings(prefix="landing/", suffixes=(".json", ".csv"), gzip=False)

VARIANTS: dict[str, Settings] = {
    "queue": Settings(aws=AwsSettings(trigger="queue")),
    "direct": Settings(aws=AwsSettings(trigger="direct")),
    "custom-queue": Settings(pipeline=CUSTOM_PIPELINE, aws=CUSTOM_AWS),
    "custom-direct": Settings(
        pipeline=CUSTOM_PIPELINE,
        aws=replace(CUSTOM_AWS, trigger="direct"),
    ),
}


# A project folder as a user has one: the routes corpus's config (with local and AWS sections),
# the schema and the transform module it names, and files that must never reach the function's code.
ROUTES_PROJECT: dict[str, str] = {
    "dockline.toml": ROUTES_CONFIG
    + """
[[local.subscriptions]]
type = "webhook"
url = "http://127.0.0.1:8080/hook"
headers = { Authorization = "Bearer local-only-token" }

[aws]
stack_name = "Routed"
""",
    "order.json": json.dumps(ORDER_SCHEMA),
    "corpus_transforms.py": TRANSFORM,  # the shop route's transform: packaged, as the only module
    "notes.py": "raise SystemExit('never packaged')\n",
    "secrets.env": "TOKEN=never-packaged\n",
    "data/big.csv": "a,b\n1,2\n",
    ".git/config": "[core]\n",
}


def write_project(folder: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text) under ``folder``; return its dockline.toml."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder / "dockline.toml"


@dataclass(frozen=True)
class Synthesized:
    settings: Settings
    path: Path  # the template file synth() wrote
    body: dict[str, Any]  # its parsed JSON

    @property
    def template(self) -> Any:  # aws_cdk.assertions.Template (imported lazily: starts jsii)
        from aws_cdk.assertions import Template

        return Template.from_json(self.body)

    @property
    def mode(self) -> str:
        return self.settings.aws.trigger


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synthesized]:
    """Every variant, synthesized by the same ``synth()`` the CLI calls."""
    from dockline.infra import synth

    result: dict[str, Synthesized] = {}
    # "routes": settings read from a project's dockline.toml, packaged with the function.
    project = write_project(tmp_path_factory.mktemp("project"), ROUTES_PROJECT)
    for name, settings in {**VARIANTS, "routes": load_settings(project)}.items():
        out_dir = tmp_path_factory.mktemp(f"cdk-{name}")
        try:
            (path,) = synth(settings, out_dir)
        except Exception as exc:
            # pytest re-raises a session fixture's error in every test that uses it; a short
            # failure keeps that fast (a jsii traceback takes about a second to render each time).
            pytest.fail(f"synth({name}) failed: {type(exc).__name__}: {exc}", pytrace=False)
        result[name] = Synthesized(settings, path, json.loads(path.read_text()))
    return result


@pytest.fixture(params=["queue", "direct"])
def default(request: pytest.FixtureRequest, synthesized: dict[str, Synthesized]) -> Synthesized:
    """The default settings in each trigger mode."""
    return synthesized[request.param]


@pytest.fixture(params=["custom-queue", "custom-direct"])
def custom(request: pytest.FixtureRequest, synthesized: dict[str, Synthesized]) -> Synthesized:
    """Non-default settings in each trigger mode."""
    return synthesized[request.param]


@pytest.fixture(params=["queue", "direct", "custom-queue", "custom-direct"])
def any_variant(request: pytest.FixtureRequest, synthesized: dict[str, Synthesized]) -> Synthesized:
    return synthesized[request.param]
