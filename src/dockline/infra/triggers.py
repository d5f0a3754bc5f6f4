"""How a landed file reaches the function: ``queue`` (S3 -> SQS -> Lambda) or ``direct`` (S3 -> Lambda).

Both put the bucket's notification configuration on the bucket itself (see ``IngestBucket``)
and make the bucket depend on the permission S3 needs, because S3 checks that it may
deliver to each destination when the configuration is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, CfnResource, Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from dockline.infra.security import skip_cfn_lint
from dockline.infra.wiring import KeyFilter

OBJECT_CREATED = "s3:ObjectCreated:*"
# The SQS poller scales to 1,000 concurrent invocations at most; at least 2 is Lambda's floor.
_MAX_POLLER_CONCURRENCY = 1000


def _filter(key_filter: KeyFilter) -> s3.CfnBucket.NotificationFilterProperty:
    rules = []
    if key_filter.prefix:
        rules.append(s3.CfnBucket.FilterRuleProperty(name="prefix", value=key_filter.prefix))
    rules.append(s3.CfnBucket.FilterRuleProperty(name="suffix", value=key_filter.suffix))
    return s3.CfnBucket.NotificationFilterProperty(s3_key=s3.CfnBucket.S3KeyFilterProperty(rules=rules))


def _cfn_bucket(bucket: s3.Bucket) -> s3.CfnBucket:
    resource = _cfn(bucket)
    if not isinstance(resource, s3.CfnBucket):
        raise TypeError(f"{bucket.node.path} is not backed by an AWS::S3::Bucket")
    return resource


class QueueTrigger(Construct):
    """S3 -> SQS -> Lambda, batched, reporting partial batch failures.

    A throttled or failed batch stays in the queue and is retried until ``max_receive_count``,
    then moves to the dead-letter queue: no event is lost when the function is busy.

    Attributes: ``event_source_mapping``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.Bucket,
        key_filters: Sequence[KeyFilter],
        queue: sqs.Queue,
        function: lambda_.Function,
        batch_size: int,
        batching_window_seconds: int,
        reserved_concurrency: int,
    ) -> None:
        super().__init__(scope, construct_id)
        cfn_bucket = _cfn_bucket(bucket)
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            queue_configurations=[
                s3.CfnBucket.QueueConfigurationProperty(event=OBJECT_CREATED, queue=queue.queue_arn, filter=_filter(f))
                for f in key_filters
            ]
        )
        # The queue policy (with the S3 statement) must exist before S3 validates the destination.
        bucket.node.add_dependency(queue.node.find_child("Policy"))
        self.event_source_mapping = lambda_.EventSourceMapping(
            self,
            "EventSourceMapping",
            target=function,
            event_source_arn=queue.queue_arn,
            batch_size=batch_size,
            max_batching_window=Duration.seconds(batching_window_seconds),
            report_batch_item_failures=True,
            # Never poll faster than the reserved concurrency allows: throttled receives still
            # count towards maxReceiveCount and would send healthy files to the DLQ.
            max_concurrency=max(2, min(reserved_concurrency, _MAX_POLLER_CONCURRENCY)),
        )
        skip_cfn_lint(
            self.event_source_mapping,
            {
                "ES1001": "SQS event source mappings take no on-failure destination "
                "(only stream sources do); "
                "the input queue's redrive policy moves failed messages to the dead-letter queue."
            },
        )


class DirectTrigger(Construct):
    """S3 -> Lambda asynchronous invocation, with retries, a maximum event age and an on-failure queue.

    Attributes: ``permission``, ``invoke_config``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.Bucket,
        bucket_arn: str,
        key_filters: Sequence[KeyFilter],
        function: lambda_.Function,
        dead_letter_queue: sqs.IQueue,
        retry_attempts: int,
        max_event_age_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.permission = lambda_.CfnPermission(
            self,
            "AllowS3Invoke",
            action="lambda:InvokeFunction",
            # The name (not the ARN), as in the invoke config, so linters can pair the two.
            function_name=function.function_name,
            principal="s3.amazonaws.com",
            source_arn=bucket_arn,
            source_account=Aws.ACCOUNT_ID,
        )
        cfn_bucket = _cfn_bucket(bucket)
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            lambda_configurations=[
                s3.CfnBucket.LambdaConfigurationProperty(
                    event=OBJECT_CREATED, function=function.function_arn, filter=_filter(f)
                )
                for f in key_filters
            ]
        )
        bucket.node.add_dependency(self.permission)
        # L1 on purpose: the L2 destination would grant itself more SQS actions than sending;
        # the function role already has sqs:SendMessage on the DLQ (and the key).
        self.invoke_config = lambda_.CfnEventInvokeConfig(
            self,
            "AsyncInvokeConfig",
            function_name=function.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=retry_attempts,
            maximum_event_age_in_seconds=max_event_age_seconds,
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=dead_letter_queue.queue_arn)
            ),
        )
        # Lambda checks the role may send to the destination when the config is created.
        self.invoke_config.node.add_dependency(function.role or function)


def _cfn(construct: IConstruct) -> CfnResource:
    resource = construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    return resource
