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


# -- issue 8, Why 13 / What to build 14: deliveries that could never work are refused at load --
def _webhook(url: str, **more: object) -> dict[str, object]:
    return {
        "local": {
            "subscriptions": [
                {"type": "email", "host": "h", "to": "a@b.example"},
                {"type": "webhook", "url": url, **more},
            ]
        }
    }


def _email(**fields: object) -> dict[str, object]:
    return {
        "local": {"subscriptions": [{"type": "email", "host": "smtp.example.com", "to": ["ops@example.com"], **fields}]}
    }


def _one_line_error(document: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_settings(document)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://[::1/hook", ["not a valid URL", "Invalid IPv6 URL"]),  # was a ValueError traceback
        ("http://[zz::1]/hook", ["IPv6"]),
        ("http://[::1]x/hook", ["after the IPv6 address"]),
        ("http://[127.0.0.1]/hook", ["address"]),
        ("http://::1/hook", ["without brackets"]),
        ("http://hooks.example.com/my hook", ["a space at position 28", "percent-encode"]),  # passed before
        ("http://exa mple.com/hook", ["a space"]),
        ("http://example.com/\x1b[31m", ["'\\x1b'"]),
        ("http://example.com/x\r\nX-Injected: 1", ["'\\r'"]),
        ("http://example.com/\u202ekoob", ["'\\u202e'"]),
        ("ftp://example.com/hook", ["must start with http:// or https://"]),
        ("example.com/hook", ["must start with http:// or https://"]),
        ("http:///hook", ["has no host"]),
        ("http://user@/hook", ["has no host"]),
        ("http://:8080/hook", ["has no host"]),
        ("http://example.com:99999/hook", ["port '99999' is not a number from 1 to 65535"]),
        ("http://example.com:0/hook", ["port '0'"]),
        ("http://example.com:8a/hook", ["port '8a'"]),
        ("http://example.com:+80/hook", ["port '+80'"]),
        ("http://[::1]:70000/hook", ["port '70000'"]),
        ("http://exa<mple.com/hook", ["not a valid host name"]),
        ("http://-bad-.example.com/hook", ["not a valid host name"]),
        ("http://a..b.example.com/hook", ["not a valid host name"]),
        ("http://999.1.1.1/hook", ["not a valid IPv4 address"]),
        ("http://example.com/ünïcode", ["non-ASCII", "percent-encode"]),
    ],
)
def test_why13_a_webhook_url_that_cannot_work_is_one_line_naming_the_subscription(url: str, words: list[str]) -> None:
    message = _one_line_error(_webhook(url))
    assert message.startswith("[local.subscriptions #2] webhook url "), message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/h",
        "http://[::1]:8080/hook",
        "http://[::1]/hook",
        "http://[fe80::1%25eth0]:8080/hook",
        "https://hooks.example.com/services/T0/B0/x?token=a%20b#frag",
        "https://user:p%40ss@hooks.example.com/hook",
        "https://user:p@ss@hooks.example.com/hook",  # the last "@" ends the userinfo
        "http://receiver_1:8080/hook",  # a compose service name
        "http://localhost./hook",
        "http://localhost:/hook",  # empty port: the scheme's default
        "https://bücher.example/hook",  # IDNA
        "HTTPS://EXAMPLE.COM/Hook",
    ],
)
def test_why13_usable_webhook_urls_are_accepted(url: str) -> None:
    settings = parse_settings(_webhook(url))
    assert settings.local.subscriptions[1].url == url  # type: ignore[union-attr]


def test_why13_a_webhook_error_does_not_show_credentials_or_the_query() -> None:
    message = _one_line_error(_webhook("https://user:s3cret@hooks.example.com:99999/x?token=t0ken"))
    assert "s3cret" not in message and "t0ken" not in message
    assert "'https://hooks.example.com:99999/x'" in message


@pytest.mark.parametrize(
    ("more", "words"),
    [
        ({"timeout_seconds": 0}, "timeout_seconds must be more than 0"),
        ({"filter_status": ["fail"]}, "filter_status 'fail' is not one of"),
    ],
)
def test_why13_webhook_timeout_and_filter_are_checked(more: dict[str, object], words: str) -> None:
    message = _one_line_error(_webhook("http://127.0.0.1:9/h", **more))
    assert message.startswith("[local.subscriptions #2] ") and words in message, message


def test_why13_a_filter_on_any_final_state_is_accepted() -> None:
    statuses = ["processed", "failed", "conflict", "duplicate", "superseded"]
    settings = parse_settings(_webhook("http://127.0.0.1:9/h", filter_status=statuses))
    assert settings.local.subscriptions[1].filter_status == tuple(statuses)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"host": ""}, "email host: the host is empty"),
        ({"host": "smtp example.com"}, "email host: the host has a space"),
        ({"host": "[::1]"}, "not a valid IPv6 address"),
        ({"host": "smtp.exa\x1bmple.com"}, "'\\x1b'"),
        ({"port": 0}, "email port must be from 1 to 65535, not 0"),
        ({"port": 70000}, "email port must be from 1 to 65535, not 70000"),
        ({"to": []}, "email to must name at least one address"),
        ({"to": ["ops"]}, "email to address 'ops' is not of the form name@domain"),
        ({"to": ["ops@"]}, "is not of the form name@domain"),
        ({"to": ["@example.com"]}, "is not of the form name@domain"),
        ({"to": ["o ps@example.com"]}, "invalid part before the '@'"),
        ({"to": ["ops..x@example.com"]}, "invalid part before the '@'"),
        ({"to": ["ops@exa mple.com"]}, "invalid domain"),
        ({"to": ["ops@example.com\r\nBcc: x@y.example"]}, "'\\r'"),
        ({"to": ["ops@[999.1.1.1]"]}, "invalid address literal"),
        ({"to": [5]}, "email to address 5 is not a string"),
        ({"sender": "dockline"}, "email sender address 'dockline' is not of the form name@domain"),
        ({"sender": 'Dock "line" <d@example.com>'}, "display name"),
        ({"timeout_seconds": 0}, "timeout_seconds must be more than 0"),
    ],
)
def test_why13_an_email_subscription_that_cannot_work_is_one_line(fields: dict[str, object], words: str) -> None:
    message = _one_line_error(_email(**fields))
    assert message.startswith("[local.subscriptions #1] "), message
    assert words in message, message


@pytest.mark.parametrize(
    "fields",
    [
        {"host": "::1", "port": 2525},
        {"host": "127.0.0.1", "port": 65535, "sender": "Dockline <dockline@example.com>"},
        {"to": ["ops@localhost", "o.p+s@example.com", "ops@[127.0.0.1]", "ops@[IPv6:::1]"]},
        {"to": ["Ops Team <ops@example.com>", "jürgen@bücher.example"]},
    ],
)
def test_why13_plausible_email_settings_are_accepted(fields: dict[str, object]) -> None:
    assert parse_settings(_email(**fields)).local.subscriptions[0].host  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("aws", "words"),
    [
        (
            {"subscriptions": [{"protocol": "https", "endpoint": "http://hooks.example.com/x"}]},
            "must start with https://",
        ),
        ({"subscriptions": [{"protocol": "https", "endpoint": "https://[::1/x"}]}, "not a valid URL"),
        ({"subscriptions": [{"protocol": "https", "endpoint": "https://a b/x"}]}, "a space"),
        ({"subscriptions": [{"protocol": "email", "endpoint": "team"}]}, "email endpoint 'team' is not of the form"),
        ({"subscriptions": [{"protocol": "email", "endpoint": "Team <t@example.com>"}]}, "email endpoint"),
        ({"alarm_email": "oncall"}, "[aws] alarm_email 'oncall' is not of the form"),
    ],
)
def test_why13_aws_subscription_endpoints_are_checked_too(aws: dict[str, object], words: str) -> None:
    message = _one_line_error({"aws": aws})
    assert words in message, message
