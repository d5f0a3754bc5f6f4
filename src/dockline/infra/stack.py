"""``DocklineStack``: one deployable stack around ``DocklinePipeline``, with the outputs the CLI reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

# Output names are a contract with the commands that read them: one place, dockline.aws.outputs.
from dockline.aws.outputs import (
    OUTPUT_ALARM_TOPIC,
    OUTPUT_BUCKET,
    OUTPUT_DLQ,
    OUTPUT_FUNCTION,
    OUTPUT_QUEUE,
    OUTPUT_TABLE,
    OUTPUT_TOPIC,
)
from dockline.config import Settings
from dockline.infra.pipeline import DocklinePipeline


class DocklineStack(Stack):
    """The dockline pipeline as a CloudFormation stack named ``settings.aws.stack_name``.

    Attributes: ``pipeline``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str | None = None,
        *,
        settings: Settings,
        code_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id or settings.aws.stack_name,
            stack_name=settings.aws.stack_name,
            description=f"dockline file pipeline ({settings.aws.trigger} trigger)",
            analytics_reporting=False,
            **kwargs,
        )
        self.pipeline = DocklinePipeline(self, "Pipeline", settings=settings, code_dir=code_dir)
        p = self.pipeline
        outputs = {
            OUTPUT_BUCKET: (p.ingest.bucket.bucket_name, "Put files under the prefix here"),
            OUTPUT_TABLE: (p.ledger.table.table_name, "The ledger table"),
            OUTPUT_TOPIC: (p.notifications.topic.topic_arn, "Notifications of processed files"),
            OUTPUT_DLQ: (p.queues.dead_letter_queue.queue_url, "Failed files; `dockline redrive` reads it"),
            OUTPUT_FUNCTION: (p.processor.function.function_name, "The processing function"),
            OUTPUT_ALARM_TOPIC: (p.monitoring.alarm_topic.topic_arn, "Subscribe here to receive alarms"),
        }
        if p.queues.input_queue is not None:
            outputs[OUTPUT_QUEUE] = (p.queues.input_queue.queue_url, "S3 event notifications wait here")
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)
