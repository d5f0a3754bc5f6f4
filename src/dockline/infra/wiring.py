"""Settings -> the plain values the stack is built from. No aws_cdk import here.

Everything that can be decided without CDK (names, filter rules, the function's
environment) lives here, so it is checked fast and fails with a ``ConfigError``
before a single construct exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from dockline.config import AwsSettings, PipelineSettings, Settings
from dockline.errors import ConfigError

HANDLER = "dockline.aws.handler.lambda_handler"
SERVICE_NAME = "dockline"
METRICS_NAMESPACE = "Dockline"
# Six times the function timeout is the Lambda guide's minimum for an SQS source:
# a message stays invisible while a batch, its retries and the poller's backoff run.
VISIBILITY_TIMEOUT_FACTOR = 6
FUNCTION_NAME_SUFFIX = "-processor"

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# 12-digit account id and the longest region name in use (14, e.g. ap-southeast-5).
_ACCOUNT_AND_REGION_LEN = 1 + 12 + 1 + 14
_MAX_BUCKET_NAME = 63
_MAX_FUNCTION_NAME = 64


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """One S3 notification filter: S3 accepts one prefix and one suffix rule per configuration."""

    prefix: str
    suffix: str


def validate_for_aws(settings: Settings) -> None:
    """Check what only the AWS side cares about. Raises ConfigError."""
    aws = settings.aws
    if not _STACK_NAME.match(aws.stack_name) or len(aws.stack_name) > 128:
        raise ConfigError(
            f"[aws] stack_name {aws.stack_name!r} must start with a letter and hold only letters, digits, '-'"
        )
    if len(function_name(aws)) > _MAX_FUNCTION_NAME:
        raise ConfigError(f"[aws] stack_name {aws.stack_name!r} is too long (at most 54 characters)")
    if aws.bucket_name is not None:
        if not _BUCKET_NAME.match(aws.bucket_name) or ".." in aws.bucket_name:
            raise ConfigError(
                f"[aws] bucket_name {aws.bucket_name!r} is not a valid S3 bucket name "
                "(3-63 lowercase letters, digits, '.', '-')"
            )
    elif len(aws.stack_name) + _ACCOUNT_AND_REGION_LEN > _MAX_BUCKET_NAME:
        raise ConfigError(
            f"[aws] stack_name {aws.stack_name!r} is too long to derive a bucket name from; set [aws] bucket_name"
        )
    if aws.timeout_seconds < 1 or aws.timeout_seconds > 900:
        raise ConfigError("[aws] timeout_seconds must be between 1 and 900 (Lambda's limit)")
    if not 128 <= aws.memory_mb <= 10240:
        raise ConfigError("[aws] memory_mb must be between 128 and 10240")
    if aws.reserved_concurrency < 1:
        raise ConfigError("[aws] reserved_concurrency must be at least 1 (0 would stop the function)")
    if not 1 <= aws.batch_size <= 10000:
        raise ConfigError("[aws] batch_size must be between 1 and 10000")
    if aws.batch_size > 10 and aws.batching_window_seconds < 1:
        raise ConfigError("[aws] batch_size above 10 needs batching_window_seconds of at least 1")
    if aws.batching_window_seconds > 300:
        raise ConfigError("[aws] batching_window_seconds must be at most 300")
    if not 1 <= aws.max_receive_count <= 1000:
        raise ConfigError("[aws] max_receive_count must be between 1 and 1000")
    if aws.log_retention_days < 1:
        raise ConfigError("[aws] log_retention_days must be at least 1")
    for sub in aws.subscriptions:
        _check_subscription(sub.protocol, sub.endpoint)
    key_filters(settings.pipeline)


def _check_subscription(protocol: str, endpoint: str) -> None:
    ok = {
        "email": "@" in endpoint,
        "sms": endpoint.startswith("+") and endpoint[1:].isdigit(),
        "https": endpoint.startswith("https://"),
        "sqs": endpoint.startswith("arn:") and ":sqs:" in endpoint,
    }.get(protocol, False)
    if not ok:
        want = {
            "email": "an email address",
            "sms": "a phone number in E.164 form (+15551234567)",
            "https": "an https:// URL",
            "sqs": "an SQS queue ARN",
        }.get(protocol, "a valid endpoint")
        raise ConfigError(f"[aws.subscriptions] {protocol} endpoint {endpoint!r} must be {want}")


def key_filters(pipeline: PipelineSettings) -> tuple[KeyFilter, ...]:
    """One filter per accepted suffix, in a stable order. Raises ConfigError.

    S3 rejects two configurations of one event type whose filters overlap, and two
    suffixes overlap when one ends with the other ('.json' and 'data.json').
    """
    suffixes = tuple(dict.fromkeys(pipeline.all_suffixes()))
    for a in suffixes:
        for b in suffixes:
            if a != b and a.endswith(b):
                raise ConfigError(
                    f"[pipeline] suffixes {b!r} and {a!r} overlap; S3 accepts only non-overlapping filters"
                )
    return tuple(KeyFilter(prefix=pipeline.prefix, suffix=s) for s in suffixes)


def function_name(aws: AwsSettings) -> str:
    return aws.stack_name + FUNCTION_NAME_SUFFIX


def log_group_name(aws: AwsSettings) -> str:
    return f"/aws/lambda/{function_name(aws)}"


def pipeline_environment(pipeline: PipelineSettings) -> dict[str, str]:
    """``DOCKLINE_*`` variables that ``config.settings_from_env`` turns back into ``pipeline``.

    So the function behaves as ``dockline.toml`` says. Mappings (``csv_schema``) have no
    environment form in ``settings_from_env`` and are left out.
    """
    env: dict[str, str] = {}
    for f in fields(PipelineSettings):
        if not f.init or f.name == "routes":  # routes have no environment form (issue 9)
            continue
        value: Any = getattr(pipeline, f.name)
        name = f"DOCKLINE_{f.name.upper()}"
        if isinstance(value, bool):
            env[name] = "true" if value else "false"
        elif isinstance(value, Enum):
            env[name] = str(value.value)
        elif isinstance(value, tuple):
            env[name] = ",".join(value)
        elif isinstance(value, int | float | str):
            env[name] = str(value)
    return env


def function_environment(
    settings: Settings, *, table_name: str, topic_arn: str, dlq_url: str, max_receive_count: int | None = None
) -> dict[str, str]:
    """The Lambda function's environment: the handler's contract plus the pipeline settings.

    ``max_receive_count`` (queue mode) lets the handler settle a file as failed, with its
    reason, on the last receive instead of SQS moving the bare event to the DLQ.
    """
    env = {
        "TABLE_NAME": table_name,
        "TOPIC_ARN": topic_arn,
        "DLQ_URL": dlq_url,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        **pipeline_environment(settings.pipeline),
    }
    if max_receive_count is not None:
        env["DOCKLINE_MAX_RECEIVE_COUNT"] = str(max_receive_count)
    return env
