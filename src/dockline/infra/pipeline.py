"""``DocklinePipeline``: the whole file pipeline as one reusable construct."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from dockline.config import CONFIG_FILE_NAME, Settings
from dockline.infra.function import ProcessorFunction
from dockline.infra.messaging import NotificationTopic, PipelineQueues
from dockline.infra.monitoring import PipelineMonitoring
from dockline.infra.security import PipelineKey
from dockline.infra.storage import IngestBucket, LedgerTable
from dockline.infra.triggers import DirectTrigger, QueueTrigger
from dockline.infra.wiring import (
    VISIBILITY_TIMEOUT_FACTOR,
    function_environment,
    function_name,
    key_filters,
    log_group_name,
    read_prefixes,
    validate_for_aws,
)


class DocklinePipeline(Construct):
    """Bucket -> (queue ->) function -> table + topic, with its failure path and monitoring.

    Everything comes from ``settings``; ``code_dir`` is the staged function code
    (``asset.stage_function_code``), with the packaged dockline.toml at its root when the
    settings came from a file (``packaging.write_config``). There is one S3 notification
    filter per route prefix and suffix, and the function may read under every route prefix
    and nowhere else. Raises ConfigError for settings AWS cannot take.

    Attributes: ``key``, ``ingest`` (``.bucket``), ``ledger`` (``.table``), ``notifications``
    (``.topic``), ``queues`` (``.dead_letter_queue``, ``.input_queue``), ``processor``
    (``.function``, ``.role``), ``trigger``, ``monitoring``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, code_dir: Path) -> None:
        super().__init__(scope, construct_id)
        validate_for_aws(settings)
        aws, pipeline = settings.aws, settings.pipeline
        removal = RemovalPolicy.DESTROY if aws.removal_policy == "destroy" else RemovalPolicy.RETAIN
        filters = key_filters(pipeline)
        logs_arn = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{log_group_name(aws)}"

        self.key = PipelineKey(self, "Key", log_group_arn=logs_arn, removal_policy=removal).key
        self.ingest = IngestBucket(
            self, "Ingest", bucket_name=aws.bucket_name, stack_name=aws.stack_name, removal_policy=removal
        )
        self.ledger = LedgerTable(
            self,
            "Ledger",
            table_name=aws.table_name,
            key=self.key,
            deletion_protection=aws.deletion_protection,
            removal_policy=removal,
        )
        self.notifications = NotificationTopic(
            self, "Notifications", topic_name=aws.topic_name, key=self.key, subscriptions=aws.subscriptions
        )
        queue_mode = aws.trigger == "queue"
        self.queues = PipelineQueues(
            self,
            "Queues",
            key=self.key,
            with_input_queue=queue_mode,
            function_timeout=Duration.seconds(aws.timeout_seconds),
            visibility_factor=VISIBILITY_TIMEOUT_FACTOR,
            max_receive_count=aws.max_receive_count,
            source_bucket_arn=self.ingest.bucket_arn,
            removal_policy=removal,
        )
        dlq = self.queues.dead_letter_queue
        self.processor = ProcessorFunction(
            self,
            "Processor",
            code_dir=code_dir,
            function_name=function_name(aws),
            log_group_name=log_group_name(aws),
            environment=function_environment(
                settings,
                table_name=self.ledger.table.table_name,
                topic_arn=self.notifications.topic.topic_arn,
                dlq_url=dlq.queue_url,
                max_receive_count=aws.max_receive_count if queue_mode else None,
                config_packaged=(code_dir / CONFIG_FILE_NAME).is_file(),
            ),
            key=self.key,
            timeout_seconds=aws.timeout_seconds,
            memory_mb=aws.memory_mb,
            reserved_concurrency=aws.reserved_concurrency,
            tracing=aws.tracing,
            log_retention_days=aws.log_retention_days,
            removal_policy=removal,
        )
        # Grants where the parts meet: each one names one resource.
        self.processor.allow_read_objects([self.ingest.objects_arn(p) for p in read_prefixes(pipeline)])
        self.processor.allow_ledger_writes(self.ledger.table.table_arn)
        self.processor.allow_publish(self.notifications.topic.topic_arn)
        self.processor.allow_dead_letters(dlq.queue_arn)
        self.processor.allow_key_use()

        function = self.processor.function
        self.trigger: QueueTrigger | DirectTrigger
        input_queue: sqs.Queue | None = self.queues.input_queue
        if input_queue is not None:
            self.processor.allow_consume(input_queue.queue_arn)
            self.trigger = QueueTrigger(
                self,
                "QueueTrigger",
                bucket=self.ingest.bucket,
                key_filters=filters,
                queue=input_queue,
                function=function,
                batch_size=aws.batch_size,
                batching_window_seconds=aws.batching_window_seconds,
                reserved_concurrency=aws.reserved_concurrency,
            )
        else:
            self.trigger = DirectTrigger(
                self,
                "DirectTrigger",
                bucket=self.ingest.bucket,
                bucket_arn=self.ingest.bucket_arn,
                key_filters=filters,
                function=function,
                dead_letter_queue=dlq,
                retry_attempts=aws.retry_attempts,
                max_event_age_seconds=aws.max_event_age_seconds,
            )

        self.monitoring = PipelineMonitoring(
            self,
            "Monitoring",
            function=function,
            dead_letter_queue=dlq,
            input_queue=input_queue,
            timeout_seconds=aws.timeout_seconds,
            key=self.key,
            alarm_topic_name=f"{aws.stack_name}-alarms",
            alarm_email=aws.alarm_email,
            dashboard_name=aws.stack_name,
        )
