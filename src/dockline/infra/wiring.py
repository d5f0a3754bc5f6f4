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
from dockline.routes import outermost

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
    """One S3 notification filter per route prefix and suffix (each also with ``.gz``), in a
    stable order; without ``[[routes]]``, ``[pipeline]``'s prefix and suffixes. Raises ConfigError.

    S3 refuses a notification configuration in which two filters of one event type overlap
    ("Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules if
    the prefixes are overlapping for the same event type"), whatever their destinations: two
    filters overlap when one prefix starts with the other and one suffix ends with the other.
    A filter that another one covers (``incoming/orders/`` + ``.json`` under ``incoming/`` +
    ``.json``; ``.json.gz`` under ``.gz``) adds no key, so it is left out and the union stays
    exact: the function routes each key itself. What is left overlapping could only be
    delivered by over-delivering, and is refused in one line naming both routes.
    """
    wanted: dict[KeyFilter, str] = {}  # filter -> the first route that asked for it
    for route in pipeline.table.routes:
        for suffix in route.all_suffixes():
            wanted.setdefault(KeyFilter(prefix=route.prefix, suffix=suffix), route.name)
    kept = [f for f in wanted if not any(g != f and _covers(g, f) for g in wanted)]
    for i, a in enumerate(kept):
        for b in kept[i + 1 :]:
            if _overlap(a, b):
                raise ConfigError(
                    f"[[routes]] {wanted[a]!r} and {wanted[b]!r}: their S3 notification filters "
                    f"({a.prefix!r} + {a.suffix!r}, {b.prefix!r} + {b.suffix!r}) overlap and neither covers the "
                    "other, which S3 refuses; make one route's prefix and suffix cover the other's, or keep them apart"
                )
    return tuple(kept)


def _covers(outer: KeyFilter, inner: KeyFilter) -> bool:
    """Does every key that ``inner`` matches also match ``outer``?"""
    return inner.prefix.startswith(outer.prefix) and inner.suffix.endswith(outer.suffix)


def _overlap(a: KeyFilter, b: KeyFilter) -> bool:
    """S3's rule: the prefixes overlap (one starts with the other) and so do the suffixes."""
    prefixes = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
    return prefixes and (a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix))


def read_prefixes(pipeline: PipelineSettings) -> tuple[str, ...]:
    """The prefixes the function may read (``s3:GetObject``): those of the notification
    filters, without one that a shorter one already covers. Raises ConfigError."""
    return outermost(f.prefix for f in key_filters(pipeline))


def function_name(aws: AwsSettings) -> str:
    return aws.stack_name + FUNCTION_NAME_SUFFIX


def log_group_name(aws: AwsSettings) -> str:
    return f"/aws/lambda/{function_name(aws)}"


def pipeline_environment(pipeline: PipelineSettings) -> dict[str, str]:
    """``DOCKLINE_*`` variables that ``config.settings_from_env`` turns back into ``pipeline``.

    For settings that come from no file (defaults, or built in code): a file is packaged
    instead (``dockline.packaging``). Mappings (``csv_schema``) and routes have no
    environment form and are left out; ``packaging.plan_config`` refuses them without a file.
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
    settings: Settings,
    *,
    table_name: str,
    topic_arn: str,
    dlq_url: str,
    max_receive_count: int | None = None,
    config_packaged: bool = False,
) -> dict[str, str]:
    """The Lambda function's environment: the handler's contract plus the pipeline settings.

    ``max_receive_count`` (queue mode) lets the handler settle a file as failed, with its
    reason, on the last receive instead of SQS moving the bare event to the DLQ. With
    ``config_packaged`` the function reads ``[pipeline]`` and ``[[routes]]`` from the
    packaged dockline.toml (``dockline.packaging``), so no ``DOCKLINE_*`` pipeline variable
    is set: one source of truth, and the variables stay free for an operator's override.
    """
    env = {
        "TABLE_NAME": table_name,
        "TOPIC_ARN": topic_arn,
        "DLQ_URL": dlq_url,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    }
    if not config_packaged:
        env.update(pipeline_environment(settings.pipeline))
    if max_receive_count is not None:
        env["DOCKLINE_MAX_RECEIVE_COUNT"] = str(max_receive_count)
    return env
