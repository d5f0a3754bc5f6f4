"""The one reader of ``dockline.toml`` and of the environment.

Every setting has a default that works, so no file is needed to start. The same file
drives the local engine, the Lambda function and the CDK stack.

Example ``dockline.toml``::

    [pipeline]
    prefix = "incoming/"
    suffixes = [".json", ".jsonl", ".ndjson", ".csv"]   # each also with ".gz"
    records = "document"          # or "split": a top-level JSON array gives one item each
    on_conflict = "reject"        # or "overwrite" (newer S3 sequencer / event time wins)
    on_bad_record = "fail_file"   # or "skip" (multi-record files only)
    max_object_bytes = 100_000_000
    retries = 4                   # attempts for transient errors, with backoff and jitter

    [local]
    concurrency = 1

    [[local.subscriptions]]
    type = "webhook"
    url = "http://127.0.0.1:8080/hook"

    [[local.subscriptions]]
    type = "email"
    host = "127.0.0.1"
    port = 25
    sender = "dockline@example.com"
    to = ["ops@example.com"]

    [aws]
    table_name = "events"
    topic_name = "events-notify"
    trigger = "queue"             # or "direct" (S3 -> Lambda, async retries)
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from dockline import endpoints
from dockline.errors import ConfigError
from dockline.models import BadRecordPolicy, ConflictPolicy, RecordMode, Status
from dockline.route_settings import parse_routes
from dockline.routes import DEFAULT_ROUTE, Route, RouteTable

DEFAULT_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson", ".csv")
CONFIG_FILE_NAME = "dockline.toml"


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """What the processing core needs; identical on both engines."""

    prefix: str = "incoming/"
    suffixes: tuple[str, ...] = DEFAULT_SUFFIXES
    gzip: bool = True  # also accept each suffix + ".gz"
    records: RecordMode = RecordMode.DOCUMENT
    on_conflict: ConflictPolicy = ConflictPolicy.REJECT
    on_bad_record: BadRecordPolicy = BadRecordPolicy.FAIL_FILE
    max_object_bytes: int = 100_000_000
    # DynamoDB items stop at 400 KB; above this a document is stored as a reference.
    max_inline_bytes: int = 350_000
    retries: int = 4
    backoff_base_seconds: float = 0.2
    backoff_max_seconds: float = 5.0
    csv_schema: Mapping[str, str] = field(default_factory=dict)  # column -> int|decimal|bool|str
    batch_size: int = 5000  # records per ledger transaction (bounded memory, few commits)
    routes: tuple[Route, ...] = ()  # [[routes]]; empty: this section is the one route
    # Derived, so ``replace`` keeps it current: the routes, or this section as the default route.
    table: RouteTable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        default = default_route(self)
        object.__setattr__(self, "table", RouteTable(self.routes or (default,), fallback=default))

    def all_suffixes(self) -> tuple[str, ...]:
        if not self.gzip:
            return self.suffixes
        return self.suffixes + tuple(s + ".gz" for s in self.suffixes if not s.endswith(".gz"))

    def matches(self, key: str) -> bool:
        """Does a route take this (decoded) key? Case-sensitive, as in S3 (``routes``)."""
        return self.table.matches(key)


def default_route(p: PipelineSettings) -> Route:
    """``[pipeline]`` as a route: configurations without ``[[routes]]`` behave as before."""
    return Route(
        name=DEFAULT_ROUTE,
        prefix=p.prefix,
        suffixes=p.suffixes,
        gzip=p.gzip,
        records=p.records,
        csv_schema=p.csv_schema,
        on_bad_record=p.on_bad_record,
        on_conflict=p.on_conflict,
    )


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    url: str
    timeout_seconds: float = 5.0
    headers: Mapping[str, str] = field(default_factory=dict)
    filter_status: tuple[str, ...] = ()  # empty: every message
    filter: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # {route = [...], status = [...]}


@dataclass(frozen=True, slots=True)
class EmailSubscription:
    host: str
    to: tuple[str, ...]
    sender: str = "dockline@localhost"
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None  # name of the env var holding the password
    timeout_seconds: float = 10.0
    filter_status: tuple[str, ...] = ()
    filter: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # {route = [...], status = [...]}


@dataclass(frozen=True, slots=True)
class LocalSettings:
    concurrency: int = 1  # one worker is fastest on a local disk (the GIL serialises parsing)
    settle_seconds: float = 0.5  # a copied-in file must be quiet this long before it is read
    lease_seconds: float = 300.0
    poll_seconds: float = 2.0  # watching: first full rescan after start, backing off to 5 min (safety net)
    stop_grace_seconds: float = 10.0  # after SIGINT/SIGTERM, files in flight get this long to finish
    lock_wait_seconds: float = 30.0  # a writer waits this long for another process's lock, then says so
    delivery_horizon_seconds: float = 86_400.0  # a failing webhook/email delivery is retried this long
    subscriptions: tuple[WebhookSubscription | EmailSubscription, ...] = ()


@dataclass(frozen=True, slots=True)
class AwsSubscription:
    protocol: str  # email | sms | https | sqs
    endpoint: str


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """What the CDK stack deploys and the Lambda function reads."""

    stack_name: str = "Dockline"
    bucket_name: str | None = None  # None: CloudFormation names it
    table_name: str = "events"
    topic_name: str = "events-notify"
    trigger: str = "queue"  # "queue" (S3 -> SQS -> Lambda) or "direct" (S3 -> Lambda)
    reserved_concurrency: int = 10
    timeout_seconds: int = 60
    memory_mb: int = 512
    batch_size: int = 10
    batching_window_seconds: int = 5
    max_receive_count: int = 5
    retry_attempts: int = 2  # direct mode: async invocation retries, 0-2
    max_event_age_seconds: int = 3600
    tracing: bool = True
    log_retention_days: int = 30
    removal_policy: str = "retain"  # "retain" or "destroy"
    deletion_protection: bool = True
    alarm_email: str | None = None
    subscriptions: tuple[AwsSubscription, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    local: LocalSettings = field(default_factory=LocalSettings)
    aws: AwsSettings = field(default_factory=AwsSettings)
    source: Path | None = None  # the file these came from, if any


_ENUMS: dict[str, type[StrEnum]] = {
    "records": RecordMode,
    "on_conflict": ConflictPolicy,
    "on_bad_record": BadRecordPolicy,
}


def _coerce(section: str, cls: type, raw: Mapping[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls) if f.init and f.name != "routes"}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in known:
            choices = ", ".join(sorted(known))
            raise ConfigError(f"unknown setting [{section}] {name!r}; known: {choices}")
        default = getattr(cls(), name) if name != "subscriptions" else ()
        values[name] = _convert(section, name, value, default)
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"[{section}]: {exc}") from exc


def _convert(section: str, name: str, value: Any, default: Any) -> Any:
    where = f"[{section}] {name}"
    if name in _ENUMS:
        enum = _ENUMS[name]
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum)
            raise ConfigError(f"{where} = {value!r} is not one of {allowed}") from None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{where} must be a whole number >= 0, not {value!r}")
        return value
    if isinstance(default, float):
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{where} must be a number >= 0, not {value!r}")
        return float(value)
    if isinstance(default, tuple):
        if isinstance(value, str) or not isinstance(value, list):
            raise ConfigError(f"{where} must be a list")
        return tuple(value)
    if isinstance(default, Mapping):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table")
        return dict(value)
    if default is None or isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}")
        return value
    return value


def _subscription(raw: Any, index: int) -> WebhookSubscription | EmailSubscription:
    section = f"local.subscriptions #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table")
    body = dict(raw)
    kind = body.pop("type", None)
    if "to" in body and isinstance(body["to"], str):
        body["to"] = [body["to"]]
    if isinstance(body.get("filter"), dict):
        body["filter"] = {k: tuple(v) if isinstance(v, list) else v for k, v in body["filter"].items()}
    if kind == "webhook":
        webhook: WebhookSubscription = _check_required(section, WebhookSubscription, body, ("url",))
        return _check_webhook(section, webhook)
    if kind == "email":
        email: EmailSubscription = _check_required(section, EmailSubscription, body, ("host", "to"))
        return _check_email(section, email)
    raise ConfigError(f"[{section}] type must be 'webhook' or 'email', not {kind!r}")


def _shown_url(url: str) -> str:
    """The URL for an error message: without user:password@ and the query, which may hold
    secrets; never raises, however malformed the URL is."""
    url = re.sub(r"^([^:/?#]*://)[^/?#]*@", r"\1", url)
    return url.partition("?")[0]


def _check_delivery(section: str, sub: WebhookSubscription | EmailSubscription) -> None:
    if sub.timeout_seconds <= 0:
        raise ConfigError(f"[{section}] timeout_seconds must be more than 0")
    statuses = {str(s) for s in Status}
    for status in sub.filter_status:
        if status not in statuses:
            raise ConfigError(f"[{section}] filter_status {status!r} is not one of {', '.join(sorted(statuses))}")
    for attribute, values in sub.filter.items():
        if attribute not in FILTER_ATTRIBUTES:
            raise ConfigError(f"[{section}] filter {attribute!r} is not one of {', '.join(FILTER_ATTRIBUTES)}")
        if not isinstance(values, tuple) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f'[{section}] filter {attribute} must be a list of strings, e.g. ["orders"]')
        for status in values if attribute == "status" else ():
            if status not in statuses:
                raise ConfigError(f"[{section}] filter status {status!r} is not one of {', '.join(sorted(statuses))}")


FILTER_ATTRIBUTES = ("route", "status")  # message attributes a local subscription can select on


def _check_webhook(section: str, sub: WebhookSubscription) -> WebhookSubscription:
    """Refuse, in one line, a webhook that could never deliver. Raises ConfigError."""
    problem = endpoints.url_problem(sub.url)
    if problem:
        raise ConfigError(f"[{section}] webhook url {_shown_url(sub.url)!r} {problem}")
    _check_delivery(section, sub)
    return sub


def _check_email(section: str, sub: EmailSubscription) -> EmailSubscription:
    """Refuse, in one line, an email subscription that could never deliver. Raises ConfigError."""
    problem = endpoints.host_problem(sub.host)
    if problem:
        raise ConfigError(f"[{section}] email host: {problem}")
    if not 1 <= sub.port <= 65535:
        raise ConfigError(f"[{section}] email port must be from 1 to 65535, not {sub.port}")
    if not sub.to:
        raise ConfigError(f"[{section}] email to must name at least one address")
    for name, address in [("sender", sub.sender), *(("to", a) for a in sub.to)]:
        problem = endpoints.address_problem(address) if isinstance(address, str) else "is not a string"
        if problem:
            raise ConfigError(f"[{section}] email {name} address {address!r} {problem}")
    _check_delivery(section, sub)
    return sub


def _check_required(section: str, cls: type, body: dict[str, Any], required: tuple[str, ...]) -> Any:
    missing = [name for name in required if name not in body]
    if missing:
        raise ConfigError(f"[{section}] is missing {', '.join(missing)}")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name not in known:
            raise ConfigError(f"unknown setting [{section}] {name!r}; known: {', '.join(sorted(known))}")
        default = known[name].default
        if name in required:
            default = [] if name == "to" else ""
        values[name] = _convert(section, name, value, () if isinstance(default, list) else default)
    return cls(**values)


def _validate(settings: Settings) -> Settings:
    p, a = settings.pipeline, settings.aws
    if not p.suffixes:
        raise ConfigError("[pipeline] suffixes must name at least one suffix")
    for suffix in p.suffixes:
        if not isinstance(suffix, str) or not suffix.startswith("."):
            raise ConfigError(f"[pipeline] suffix {suffix!r} must start with '.'")
    if p.prefix.startswith("/") or ".." in p.prefix.split("/"):
        raise ConfigError(f"[pipeline] prefix {p.prefix!r} must be a relative key prefix")
    for column, kind in p.csv_schema.items():
        if kind not in ("str", "int", "decimal", "bool"):
            raise ConfigError(
                f"[pipeline] csv_schema: column {column!r} has type {kind!r}; use 'str', 'int', 'decimal' or 'bool'"
            )
    if p.retries < 1:
        raise ConfigError("[pipeline] retries must be at least 1 (the first attempt counts)")
    if a.trigger not in ("queue", "direct"):
        raise ConfigError(f"[aws] trigger must be 'queue' or 'direct', not {a.trigger!r}")
    if not 0 <= a.retry_attempts <= 2:
        raise ConfigError("[aws] retry_attempts must be 0, 1 or 2 (Lambda's limit)")
    if not 60 <= a.max_event_age_seconds <= 21600:
        raise ConfigError("[aws] max_event_age_seconds must be between 60 and 21600")
    if a.removal_policy not in ("retain", "destroy"):
        raise ConfigError(f"[aws] removal_policy must be 'retain' or 'destroy', not {a.removal_policy!r}")
    for sub in a.subscriptions:
        if sub.protocol not in ("email", "sms", "https", "sqs"):
            raise ConfigError(f"[aws.subscriptions] protocol must be email, sms, https or sqs, not {sub.protocol!r}")
        if sub.protocol == "https" and (problem := endpoints.url_problem(sub.endpoint, schemes=("https",))):
            raise ConfigError(f"[aws.subscriptions] https endpoint {_shown_url(sub.endpoint)!r} {problem}")
        if sub.protocol == "email" and (problem := endpoints.address_problem(sub.endpoint, display_name=False)):
            raise ConfigError(f"[aws.subscriptions] email endpoint {sub.endpoint!r} {problem}")
    if a.alarm_email is not None and (problem := endpoints.address_problem(a.alarm_email, display_name=False)):
        raise ConfigError(f"[aws] alarm_email {a.alarm_email!r} {problem}")
    if settings.local.concurrency < 1:
        raise ConfigError("[local] concurrency must be at least 1")
    return settings


def parse_settings(document: Mapping[str, Any], source: Path | None = None) -> Settings:
    """Build settings from a parsed TOML document. Raises ConfigError."""
    unknown = set(document) - {"pipeline", "routes", "local", "aws"}
    if unknown:
        raise ConfigError(f"unknown section(s) {', '.join(sorted(unknown))}; known: pipeline, routes, local, aws")
    pipeline_raw = _table(document, "pipeline")
    if "routes" in pipeline_raw:
        raise ConfigError("[pipeline] routes: write routes as [[routes]] tables")
    pipeline = _coerce("pipeline", PipelineSettings, pipeline_raw)
    if "routes" in document:
        base_dir = source.parent if source is not None else Path.cwd()
        routes = parse_routes(document["routes"], defaults=default_route(pipeline), base_dir=base_dir)
        pipeline = replace(pipeline, routes=routes)
    local_raw = dict(_table(document, "local"))
    subs_raw = local_raw.pop("subscriptions", [])
    if not isinstance(subs_raw, list):
        raise ConfigError("[local] subscriptions must be an array of tables ([[local.subscriptions]])")
    local = _coerce("local", LocalSettings, local_raw)
    local = replace(local, subscriptions=tuple(_subscription(s, i) for i, s in enumerate(subs_raw)))
    _check_route_filters(pipeline, local)
    aws_raw = dict(_table(document, "aws"))
    aws_subs = aws_raw.pop("subscriptions", [])
    if not isinstance(aws_subs, list):
        raise ConfigError("[aws] subscriptions must be an array of tables ([[aws.subscriptions]])")
    aws = _coerce("aws", AwsSettings, aws_raw)
    aws = replace(
        aws,
        subscriptions=tuple(
            _check_required("aws.subscriptions", AwsSubscription, dict(s), ("protocol", "endpoint")) for s in aws_subs
        ),
    )
    return _validate(Settings(pipeline=pipeline, local=local, aws=aws, source=source))


def _check_route_filters(pipeline: PipelineSettings, local: LocalSettings) -> None:
    """A subscription filtering on a route no configuration has would never hear anything."""
    names = [route.name for route in pipeline.table.routes]
    for index, sub in enumerate(local.subscriptions):
        for name in sub.filter.get("route", ()):
            if name not in names:
                raise ConfigError(
                    f"[local.subscriptions #{index + 1}] filter route {name!r} is not a route;"
                    f" routes: {', '.join(names)}"
                )


def _table(document: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = document.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def load_settings(path: Path | None = None, *, search_dir: Path | None = None) -> Settings:
    """Read ``path``, or ``dockline.toml`` in ``search_dir`` if it exists, else defaults.

    Raises ConfigError for a missing explicit file, bad TOML or bad values.
    """
    if path is None and search_dir is not None:
        candidate = search_dir / CONFIG_FILE_NAME
        path = candidate if candidate.is_file() else None
    if path is None:
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_settings(document, source=path)


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Settings for the Lambda function: defaults, overridden by DOCKLINE_* variables.

    The seed's TABLE_NAME and TOPIC_ARN are read by the handler itself.
    """
    env = os.environ if env is None else env
    pipeline = PipelineSettings()
    overrides: dict[str, Any] = {}
    for f in fields(PipelineSettings):
        raw = env.get(f"DOCKLINE_{f.name.upper()}")
        if raw is None or not f.init or f.name == "routes":  # routes have no environment form
            continue
        default = getattr(pipeline, f.name)
        value: Any
        if isinstance(default, tuple):
            value = [part.strip() for part in raw.split(",") if part.strip()]
        elif isinstance(default, bool):
            value = raw.strip().lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int) and f.name not in _ENUMS:
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"DOCKLINE_{f.name.upper()} must be a whole number, not {raw!r}") from None
        elif isinstance(default, float):
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"DOCKLINE_{f.name.upper()} must be a number, not {raw!r}") from None
        elif isinstance(default, Mapping):
            continue
        else:
            value = raw
        overrides[f.name] = _convert("pipeline", f.name, value, default)
    return _validate(Settings(pipeline=replace(pipeline, **overrides)))
