from __future__ import annotations

from pathlib import Path

import pytest

from dockline.config import EmailSubscription, WebhookSubscription, load_settings, parse_settings, settings_from_env
from dockline.errors import ConfigError
from dockline.models import ConflictPolicy, RecordMode


def test_defaults_need_no_file(tmp_path: Path) -> None:
    settings = load_settings(search_dir=tmp_path)
    assert settings.pipeline.prefix == "incoming/"
    assert settings.pipeline.matches("incoming/a.json") and settings.pipeline.matches("incoming/a.ndjson.gz")
    assert not settings.pipeline.matches("Incoming/a.json")  # case-sensitive, as in S3
    assert not settings.pipeline.matches("incoming/a.JSON")
    assert settings.aws.table_name == "events" and settings.aws.trigger == "queue"


def test_a_full_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "dockline.toml"
    path.write_text(
        '[pipeline]\nprefix = "drop/"\nsuffixes = [".json"]\nrecords = "split"\non_conflict = "overwrite"\n'
        "[local]\nconcurrency = 3\n"
        '[[local.subscriptions]]\ntype = "webhook"\nurl = "http://127.0.0.1:9/h"\n'
        '[[local.subscriptions]]\ntype = "email"\nhost = "127.0.0.1"\nto = "ops@example.com"\n'
        '[aws]\ntrigger = "direct"\nretry_attempts = 1\n'
        '[[aws.subscriptions]]\nprotocol = "email"\nendpoint = "team@example.com"\n'
    )
    settings = load_settings(search_dir=tmp_path)
    assert settings.source == path
    assert settings.pipeline.records is RecordMode.SPLIT
    assert settings.pipeline.on_conflict is ConflictPolicy.OVERWRITE
    webhook, email = settings.local.subscriptions
    assert isinstance(webhook, WebhookSubscription) and webhook.url == "http://127.0.0.1:9/h"
    assert isinstance(email, EmailSubscription) and email.to == ("ops@example.com",)
    assert settings.aws.trigger == "direct" and settings.aws.subscriptions[0].endpoint == "team@example.com"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"pipline": {}}, "unknown section(s) pipline"),
        ({"pipeline": {"prefx": "x/"}}, "unknown setting [pipeline] 'prefx'"),
        ({"pipeline": {"retries": "three"}}, "[pipeline] retries must be a whole number"),
        ({"pipeline": {"retries": 0}}, "retries must be at least 1"),
        ({"pipeline": {"suffixes": "json"}}, "[pipeline] suffixes must be a list"),
        ({"pipeline": {"suffixes": ["json"]}}, "suffix 'json' must start with '.'"),
        ({"pipeline": {"prefix": "../x/"}}, "must be a relative key prefix"),
        ({"local": {"subscriptions": [{"type": "pager"}]}}, "type must be 'webhook' or 'email'"),
        ({"local": {"subscriptions": [{"type": "email", "host": "h"}]}}, "is missing to"),
        ({"aws": {"trigger": "sometimes"}}, "trigger must be 'queue' or 'direct'"),
        ({"aws": {"retry_attempts": 3}}, "retry_attempts must be 0, 1 or 2"),
        ({"aws": {"subscriptions": [{"protocol": "fax", "endpoint": "x"}]}}, "protocol must be email, sms"),
    ],
)
def test_bad_settings_are_one_clear_line(document: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(document)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_lambda_reads_pipeline_settings_from_the_environment() -> None:
    settings = settings_from_env(
        {
            "DOCKLINE_PREFIX": "drop/",
            "DOCKLINE_SUFFIXES": ".json, .csv",
            "DOCKLINE_RETRIES": "2",
            "DOCKLINE_ON_CONFLICT": "overwrite",
            "DOCKLINE_GZIP": "false",
        }
    )
    p = settings.pipeline
    assert (p.prefix, p.suffixes, p.retries, p.on_conflict, p.gzip) == (
        "drop/",
        (".json", ".csv"),
        2,
        ConflictPolicy.OVERWRITE,
        False,
    )
    with pytest.raises(ConfigError, match="DOCKLINE_RETRIES must be a whole number"):
        settings_from_env({"DOCKLINE_RETRIES": "many"})
