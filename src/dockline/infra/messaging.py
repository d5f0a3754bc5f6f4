"""Topics and queues: the notification topic, the input queue and the dead-letter queue."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from dockline.config import AwsSubscription
from dockline.infra.security import skip_cfn_lint

_PROTOCOLS = {
    "email": sns.SubscriptionProtocol.EMAIL,
    "sms": sns.SubscriptionProtocol.SMS,
    "https": sns.SubscriptionProtocol.HTTPS,
    "sqs": sns.SubscriptionProtocol.SQS,
}


def encrypted_topic(scope: Construct, construct_id: str, *, topic_name: str, key: kms.IKey) -> sns.Topic:
    """A KMS-encrypted topic whose policy denies any request that is not over TLS."""
    return sns.Topic(scope, construct_id, topic_name=topic_name, master_key=key, enforce_ssl=True)


class NotificationTopic(Construct):
    """The ``events-notify`` topic and its subscriptions from settings.

    Attributes: ``topic``, ``subscriptions``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic_name: str,
        key: kms.IKey,
        subscriptions: Sequence[AwsSubscription],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = encrypted_topic(self, "Topic", topic_name=topic_name, key=key)
        self.subscriptions = [
            sns.Subscription(
                self,
                f"Subscription{index}",
                topic=self.topic,
                protocol=_PROTOCOLS[sub.protocol],
                endpoint=sub.endpoint,
            )
            for index, sub in enumerate(subscriptions, start=1)
        ]


class PipelineQueues(Construct):
    """The dead-letter queue (both modes) and, in queue mode, the input queue S3 sends to.

    Attributes: ``dead_letter_queue``, ``input_queue`` (``None`` in direct mode).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        with_input_queue: bool,
        function_timeout: Duration,
        visibility_factor: int,
        max_receive_count: int,
        source_bucket_arn: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            # Longest SQS allows: people need time to look at failed files before they expire.
            retention_period=Duration.days(14),
            removal_policy=removal_policy,
        )
        skip_cfn_lint(
            self.dead_letter_queue,
            {"ES6000": "This is the dead-letter queue: failed messages end here, nothing redrives them further."},
        )
        self.input_queue: sqs.Queue | None = None
        if not with_input_queue:
            return
        self.input_queue = sqs.Queue(
            self,
            "InputQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            # Reuse data keys for 15 min: fewer KMS calls per message for S3, the poller and us.
            data_key_reuse=Duration.minutes(15),
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(function_timeout.to_seconds() * visibility_factor),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=max_receive_count),
            removal_policy=removal_policy,
        )
        self.input_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowS3EventNotificationsFromTheBucket",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.input_queue.queue_arn],
                conditions={
                    "ArnEquals": {"aws:SourceArn": source_bucket_arn},
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )
