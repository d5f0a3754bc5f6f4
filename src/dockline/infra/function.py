"""The processing function, its log group and its one IAM role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from dockline.infra.security import skip_cfn_lint, skip_checkov
from dockline.infra.wiring import HANDLER

RUNTIME = lambda_.Runtime.PYTHON_3_13
# AWS publishes Powertools for AWS Lambda (Python) v3 as a public layer per Python version
# and architecture from account 017000801446 in every commercial region:
#   arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{python}-{arch}:{version}
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_VERSION = 27

# CloudWatch accepts only these retention periods (days).
_RETENTION_DAYS = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}


def powertools_layer_arn(version: int = POWERTOOLS_LAYER_VERSION) -> str:
    python = "python" + RUNTIME.name.removeprefix("python").replace(".", "")
    return (
        f"arn:aws:lambda:{Aws.REGION}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{python}-arm64:{version}"
    )


def retention(days: int) -> logs.RetentionDays:
    """The CloudWatch retention for ``days``, rounded up to the next value CloudWatch accepts."""
    allowed = min((d for d in _RETENTION_DAYS if d >= days), default=3653)
    return getattr(logs.RetentionDays, _RETENTION_DAYS[allowed])  # type: ignore[no-any-return]


class ProcessorFunction(Construct):
    """The function that reads a landed file and ledgers it, with a role that can do only that.

    The role starts empty (no ``AWSLambdaBasicExecutionRole``, whose log actions are on
    ``*``); each ``allow_*`` method adds exactly what the handler calls, on exactly one resource.

    Attributes: ``function``, ``role``, ``log_group``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        function_name: str,
        log_group_name: str,
        environment: Mapping[str, str],
        key: kms.IKey,
        timeout_seconds: int,
        memory_mb: int,
        reserved_concurrency: int,
        tracing: bool,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
        powertools_layer_version: int = POWERTOOLS_LAYER_VERSION,
    ) -> None:
        super().__init__(scope, construct_id)
        self._key = key
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=log_group_name,
            retention=retention(log_retention_days),
            encryption_key=key,
            removal_policy=removal_policy,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="dockline processor: read landed files, write the ledger, notify",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description="dockline: parse a landed file, ledger its records, notify",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(code_dir)),
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "Powertools", powertools_layer_arn(powertools_layer_version)
                )
            ],
            role=self.role,
            environment=dict(environment),
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=self.log_group,
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
        )
        skip_cfn_lint(
            self.function,
            {"W3005": "CDK adds DependsOn the role that the Role GetAtt already implies; harmless."},
        )
        skip_checkov(
            self.function,
            {
                "CKV_AWS_117": "No VPC: the function only calls AWS APIs; a VPC would add NAT or endpoint "
                "cost and cold-start time and protect nothing.",
                "CKV_AWS_116": "Failures are caught by the trigger, not a function DLQ: SQS redrive to the "
                "dead-letter queue (queue mode) or the async on-failure destination (direct mode), "
                "which also records the error.",
                "CKV_AWS_173": "The environment holds only resource names and settings, no secrets; Lambda "
                "encrypts it at rest with its AWS managed key.",
            },
        )

    def _allow(self, sid: str, actions: list[str], resources: list[str]) -> None:
        self.role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))

    def allow_read_objects(self, objects_arns: Sequence[str]) -> None:
        """s3:GetObject(Version) on the routes' prefixes only (e.g. ``bucket/incoming/*``)."""
        self._allow("ReadLandedFiles", ["s3:GetObject", "s3:GetObjectVersion"], list(objects_arns))

    def allow_ledger_writes(self, table_arn: str) -> None:
        """The item calls the ledger makes; no Query or Scan.

        ``TransactWriteItems`` needs no action of its own: each ``Put`` in it is authorized
        as ``dynamodb:PutItem``, each ``Delete`` as ``dynamodb:DeleteItem`` (a file that ends
        failed takes back the items it wrote, conditionally on them still being its own).
        """
        self._allow(
            "WriteLedger",
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:DeleteItem",
            ],
            [table_arn],
        )

    def allow_publish(self, topic_arn: str) -> None:
        self._allow("PublishNotifications", ["sns:Publish"], [topic_arn])

    def allow_dead_letters(self, queue_arn: str) -> None:
        """The handler sends permanently failed files to the DLQ (and Lambda async destinations do too)."""
        self._allow("SendDeadLetters", ["sqs:SendMessage"], [queue_arn])

    def allow_consume(self, queue_arn: str) -> None:
        """What the SQS event source mapping needs, on the input queue only."""
        self._allow(
            "ConsumeInputQueue",
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            ],
            [queue_arn],
        )

    def allow_key_use(self) -> None:
        """Encrypted SQS, SNS and DynamoDB need the caller to use the key: data keys and decrypt."""
        actions = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        self._allow("UsePipelineKey", actions, [self._key.key_arn])
