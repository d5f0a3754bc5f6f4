"""Wiring of the AWS engine: clients, adapters and the pipeline, built once.

The Lambda handler builds one ``AwsEngine`` per container, on its first invocation
(never at import); the CLI builds one for ``dlq redrive``. Clients are created on
first use, from one boto3 session, with botocore's *standard* retry mode.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dockline.aws.deadletters import SQSDeadLetters
from dockline.aws.ledger import DynamoDBLedger, RecordWrites
from dockline.aws.notifier import SNSNotifier
from dockline.aws.store import S3Store
from dockline.config import CONFIG_FILE_NAME, PipelineSettings, Settings, load_settings, settings_from_env
from dockline.errors import ConfigError, DocklineError, UsageError
from dockline.lifecycle import Lifecycle
from dockline.pipeline import Pipeline
from dockline.retry import RetryPolicy

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

ENV_TABLE = "TABLE_NAME"
ENV_TOPIC = "TOPIC_ARN"
ENV_DLQ = "DLQ_URL"
ENV_RECORD_WRITES = "DOCKLINE_RECORD_WRITES"
ENV_MAX_RECEIVE_COUNT = "DOCKLINE_MAX_RECEIVE_COUNT"
ENV_CONFIG = "DOCKLINE_CONFIG"
# Said by every AWS-facing command (and deploy) when boto3 finds no region anywhere.
NO_REGION = "no AWS region set; set AWS_REGION (or AWS_DEFAULT_REGION, or a region in your AWS profile)"
# jsonschema and what it imports: vendored by `dockline deploy` for routes with a schema.
_VENDORED_FOR_SCHEMAS = ("jsonschema", "jsonschema_specifications", "referencing", "rpds", "attrs", "attr")



def client_config() -> Config:
    """Standard retry mode (throttling and 5xx retried with backoff by botocore first),
    and timeouts short enough to leave a 60 s function time to retry.

    Client-side parameter validation is off: every request is built by dockline's own
    code (covered by the tests), the service validates anyway, and walking each item's
    payload twice was ~4% of the handler's time per file.
    """
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=30,
        parameter_validation=False,
    )


@dataclass
class Clients:
    """One boto3 client per service, each created on first use and then reused."""

    session: Any = None  # a boto3 Session; the default one when None
    config: Any = None
    _made: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._made:
                if self.session is None:
                    import boto3

                    self.session = boto3.session.Session()
                from botocore.exceptions import NoRegionError

                try:
                    self._made[service] = self.session.client(service, config=self.config or client_config())
                except NoRegionError as exc:
                    raise UsageError(NO_REGION) from exc
            return self._made[service]

    def provide(self, service: str, client: Any) -> Clients:
        """Use ``client`` for ``service`` (tests hand in clients with event hooks)."""
        self._made[service] = client
        return self

    @property
    def s3(self) -> S3Client:
        return cast("S3Client", self.client("s3"))

    @property
    def dynamodb(self) -> DynamoDBClient:
        return cast("DynamoDBClient", self.client("dynamodb"))

    @property
    def sns(self) -> SNSClient:
        return cast("SNSClient", self.client("sns"))

    @property
    def sqs(self) -> SQSClient:
        return cast("SQSClient", self.client("sqs"))

    @property
    def cloudformation(self) -> Any:  # no type stubs installed for CloudFormation
        return self.client("cloudformation")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AwsEngine:
    """The AWS adapters around one Pipeline."""

    settings: Settings
    pipeline: Pipeline
    store: S3Store
    ledger: DynamoDBLedger
    notifier: SNSNotifier
    dead_letters: SQSDeadLetters | None
    clients: Clients
    max_receive_count: int | None = None

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.pipeline)


def build_engine(
    *,
    table_name: str,
    topic_arn: str,
    dlq_url: str | None,
    settings: Settings,
    clients: Clients | None = None,
    record_writes: RecordWrites = "checked",
    max_receive_count: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> AwsEngine:
    """Adapters and pipeline for one table, topic and (optional) dead-letter queue.

    Builds no client: each adapter creates its client on first use.
    """
    clients = clients or Clients()
    store = S3Store(client_factory=lambda: clients.s3)
    ledger = DynamoDBLedger(
        table_name,
        client_factory=lambda: clients.dynamodb,
        settings=settings.pipeline,
        record_writes=record_writes,
        sleep=sleep,
        clock=clock,
    )
    notifier = SNSNotifier(topic_arn, client_factory=lambda: clients.sns)
    dead_letters = SQSDeadLetters(dlq_url, client_factory=lambda: clients.sqs) if dlq_url else None
    p = settings.pipeline
    retry = RetryPolicy(
        attempts=p.retries, base_seconds=p.backoff_base_seconds, max_seconds=p.backoff_max_seconds, sleep=sleep
    )
    pipeline = Pipeline(
        settings=p, store=store, ledger=ledger, notifier=notifier, dead_letters=dead_letters, clock=clock, retry=retry
    )
    return AwsEngine(settings, pipeline, store, ledger, notifier, dead_letters, clients, max_receive_count)


def packaged_config_path() -> Path:
    """Where ``dockline synth`` packages dockline.toml: beside the ``dockline`` package, at
    the root of the function's code (``/var/task`` on Lambda; see ``dockline.packaging``)."""
    import dockline

    return Path(dockline.__file__).resolve().parent.parent / CONFIG_FILE_NAME


def function_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The function's settings: the dockline.toml that ``DOCKLINE_CONFIG`` names, or else the
    one packaged beside the handler, or else the defaults; then any ``DOCKLINE_*`` pipeline
    variable on top (an operator's override of ``[pipeline]``; routes have no variables).

    Read once per container: the handler builds its engine once. Raises ConfigError.
    """
    env = os.environ if env is None else env
    named = env.get(ENV_CONFIG)
    path: Path | None
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"{ENV_CONFIG} names {named}, which is not a file")
    else:
        packaged = packaged_config_path()
        path = packaged if packaged.is_file() else None
    try:
        settings = load_settings(path) if path is not None else Settings()
    except ModuleNotFoundError as exc:  # a route's schema needs jsonschema, which only deploy vendors
        top = (exc.name or "").split(".")[0]
        fix = (
            "deploy with `dockline deploy`, which vendors it (`dockline synth` alone does not)"
            if top in _VENDORED_FOR_SCHEMAS
            else "a transform's module must bring it inside its package folder"
        )
        raise ConfigError(f"{path} needs the {exc.name} package, which the function's code lacks; {fix}") from exc
    return _with_pipeline_overrides(settings, env)


def _with_pipeline_overrides(settings: Settings, env: Mapping[str, str]) -> Settings:
    """``settings`` with the ``[pipeline]`` values that ``DOCKLINE_*`` variables set (those
    with an environment form: not routes, not the csv_schema table)."""
    defaults = PipelineSettings()
    names = [
        f.name
        for f in fields(PipelineSettings)
        if f.init
        and f.name != "routes"
        and not isinstance(getattr(defaults, f.name), Mapping)
        and f"DOCKLINE_{f.name.upper()}" in env
    ]
    if not names:
        return settings
    from_env = settings_from_env(env).pipeline
    pipeline = replace(settings.pipeline, **{name: getattr(from_env, name) for name in names})
    return replace(settings, pipeline=pipeline)


def engine_from_env(
    env: Mapping[str, str] | None = None,
    *,
    clients: Clients | None = None,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> AwsEngine:
    """The Lambda function's engine, configured by its environment and its dockline.toml.

    ``TABLE_NAME`` and ``TOPIC_ARN`` are required (the seed's names) and always name the
    resources, whatever the file says; ``DLQ_URL``, ``DOCKLINE_RECORD_WRITES`` (checked |
    batch), ``DOCKLINE_MAX_RECEIVE_COUNT``, ``DOCKLINE_CONFIG`` and the ``DOCKLINE_*``
    pipeline settings are optional (``function_settings``). Raises ConfigError.
    """
    env = os.environ if env is None else env
    missing = [name for name in (ENV_TABLE, ENV_TOPIC) if not env.get(name)]
    if missing:
        raise ConfigError(
            f"environment variable {' and '.join(missing)} is not set: the function needs {ENV_TABLE} "
            f"(the DynamoDB table) and {ENV_TOPIC} (the SNS topic's ARN)"
        )
    writes = env.get(ENV_RECORD_WRITES, "checked")
    if writes not in ("checked", "batch"):
        raise ConfigError(f"{ENV_RECORD_WRITES} must be 'checked' or 'batch', not {writes!r}")
    receive = env.get(ENV_MAX_RECEIVE_COUNT)
    if receive is not None and not receive.isdigit():
        raise ConfigError(f"{ENV_MAX_RECEIVE_COUNT} must be a whole number, not {receive!r}")
    return build_engine(
        table_name=env[ENV_TABLE],
        topic_arn=env[ENV_TOPIC],
        dlq_url=env.get(ENV_DLQ) or None,
        settings=function_settings(env),
        clients=clients,
        record_writes=cast("RecordWrites", writes),
        max_receive_count=int(receive) if receive else None,
        clock=clock,
        sleep=sleep,
    )


def stack_outputs(stack_name: str, *, client: Any = None) -> dict[str, str]:
    """The outputs of a deployed CloudFormation stack, by output key.

    Raises DocklineError when the stack does not exist or cannot be read.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from dockline.aws.errors import translate

    client = client or Clients().cloudformation
    try:
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise DocklineError(f"stack {stack_name!r} does not exist in this account and region") from exc
        raise translate(exc, f"reading stack {stack_name!r}") from exc
    except BotoCoreError as exc:
        raise translate(exc, f"reading stack {stack_name!r}") from exc
    return {o["OutputKey"]: o["OutputValue"] for s in stacks for o in s.get("Outputs", []) if "OutputKey" in o}


def stack_output(stack_name: str, key: str, *, client: Any = None) -> str:
    """One output of a stack. Raises DocklineError when the stack or output is missing."""
    outputs = stack_outputs(stack_name, client=client)
    if key not in outputs:
        raise DocklineError(f"stack {stack_name!r} has no output {key!r} (is it a dockline stack?)")
    return outputs[key]
