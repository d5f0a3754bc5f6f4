"""Alarms to an alarm topic, and one dashboard for the pipeline."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from dockline.infra.messaging import encrypted_topic
from dockline.infra.wiring import METRICS_NAMESPACE, SERVICE_NAME

# Alarm when a run takes more than this share of the timeout: the next bigger file times out.
DURATION_ALARM_SHARE = 0.8
# A message older than this means the function is not keeping up (or is failing and retrying).
OLDEST_MESSAGE_ALARM_SECONDS = 900
PERIOD = Duration.minutes(5)
HANDLER_METRICS = (
    "FilesProcessed",
    "FilesFailed",
    "FilesDuplicate",
    "FilesConflict",
    "FilesSuperseded",
    "RecordsWritten",
)


def handler_metric(name: str) -> cloudwatch.Metric:
    """An EMF metric the handler emits through Powertools (dimension ``service``)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=cloudwatch.Stats.SUM,
        period=PERIOD,
    )


class PipelineMonitoring(Construct):
    """Alarms on errors, throttles, dead letters, slow runs and (queue mode) backlog, and a dashboard.

    Attributes: ``alarm_topic``, ``alarms`` (by name), ``dashboard``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        dead_letter_queue: sqs.Queue,
        input_queue: sqs.Queue | None,
        timeout_seconds: int,
        key: kms.IKey,
        alarm_topic_name: str,
        alarm_email: str | None,
        dashboard_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarm_topic: sns.Topic = encrypted_topic(self, "AlarmTopic", topic_name=alarm_topic_name, key=key)
        if alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        errors = function.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM)
        throttles = function.metric_throttles(period=PERIOD, statistic=cloudwatch.Stats.SUM)
        duration = function.metric_duration(period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM)
        dead_letters = dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM
        )
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._alarm("Errors", errors, 0, "The function failed at least once (see its logs).")
        self._alarm("Throttles", throttles, 0, "The function was throttled: reserved concurrency is too low.")
        self._alarm(
            "DeadLetters",
            dead_letters,
            0,
            "Files are in the dead-letter queue: inspect them, fix the cause, then `dockline dlq redrive`.",
        )
        self._alarm(
            "DurationNearTimeout",
            duration,
            int(timeout_seconds * 1000 * DURATION_ALARM_SHARE),
            f"A run took over {int(DURATION_ALARM_SHARE * 100)}% of the {timeout_seconds}s timeout.",
        )
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(title="Invocations", left=[function.metric_invocations(period=PERIOD)], width=8),
            cloudwatch.GraphWidget(title="Errors and throttles", left=[errors, throttles], width=8),
            cloudwatch.GraphWidget(
                title="Duration (ms)",
                left=[
                    function.metric_duration(period=PERIOD, statistic=cloudwatch.Stats.AVERAGE),
                    function.metric_duration(period=PERIOD, statistic=cloudwatch.Stats.p(99)),
                    duration,
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=timeout_seconds * 1000, label="timeout")],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Dead-letter queue depth", left=[dead_letters], width=8),
            cloudwatch.GraphWidget(
                title="Files",
                left=[handler_metric(name) for name in HANDLER_METRICS if name.startswith("Files")],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Records written", left=[handler_metric("RecordsWritten")], width=8),
        ]
        if input_queue is not None:
            oldest = input_queue.metric_approximate_age_of_oldest_message(
                period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM
            )
            self._alarm(
                "OldestMessageAge",
                oldest,
                OLDEST_MESSAGE_ALARM_SECONDS,
                f"A landed file has waited over {OLDEST_MESSAGE_ALARM_SECONDS}s in the input queue.",
            )
            widgets.append(
                cloudwatch.GraphWidget(
                    title="Input queue",
                    left=[input_queue.metric_approximate_number_of_messages_visible(period=PERIOD)],
                    right=[oldest],
                    width=8,
                )
            )
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name, widgets=[widgets])

    def _alarm(self, name: str, metric: cloudwatch.Metric, threshold: float, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"dockline: {description}",
        )
        action = actions.SnsAction(self.alarm_topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[name] = alarm
