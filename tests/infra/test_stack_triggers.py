"""Topic, queues and the two trigger modes with their failure paths."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.cfn import (
    TLS_ONLY_FIELDS,
    dead_letter_queue,
    function,
    input_queue,
    main_bucket,
    only,
    props,
    render,
    resources,
)
from tests.infra.conftest import Synthesized


def key_arn(variant: Synthesized) -> dict:
    return {"Fn::GetAtt": [only(variant.body, "AWS::KMS::Key"), "Arn"]}


# --- topic -------------------------------------------------------------------------------------


def test_topic_is_named_from_settings_and_kms_encrypted(any_variant: Synthesized) -> None:
    any_variant.template.has_resource_properties(
        "AWS::SNS::Topic",
        {"TopicName": any_variant.settings.aws.topic_name, "KmsMasterKeyId": key_arn(any_variant)},
    )


def test_topic_policy_allows_tls_only(any_variant: Synthesized) -> None:
    topic = only(
        any_variant.body, "AWS::SNS::Topic", lambda r: props(r)["TopicName"] == any_variant.settings.aws.topic_name
    )
    any_variant.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({**TLS_ONLY_FIELDS, "Principal": "*", "Action": "sns:Publish"})]
                )
            },
        },
    )


def test_subscriptions_come_from_settings(any_variant: Synthesized) -> None:
    body = any_variant.body
    topic = only(body, "AWS::SNS::Topic", lambda r: props(r)["TopicName"] == any_variant.settings.aws.topic_name)
    subscribed = {
        (props(s)["Protocol"], props(s)["Endpoint"])
        for s in resources(body, "AWS::SNS::Subscription").values()
        if props(s)["TopicArn"] == {"Ref": topic}
    }
    assert subscribed == {(s.protocol, s.endpoint) for s in any_variant.settings.aws.subscriptions}


def test_custom_settings_subscribe_every_protocol(custom: Synthesized) -> None:
    for protocol in ("email", "sms", "https", "sqs"):
        custom.template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": protocol})


# --- dead-letter queue (both modes) ------------------------------------------------------------


def test_dead_letter_queue_is_kms_encrypted_tls_only_and_kept_14_days(any_variant: Synthesized) -> None:
    dlq = dead_letter_queue(any_variant.body)
    assert props(any_variant.body["Resources"][dlq]) == {
        "KmsMasterKeyId": key_arn(any_variant),
        "MessageRetentionPeriod": 14 * 24 * 3600,
    }
    any_variant.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": dlq}],
            "PolicyDocument": {"Statement": Match.array_with([Match.object_like(TLS_ONLY_FIELDS)])},
        },
    )


# --- queue mode --------------------------------------------------------------------------------


def queue_mode(variant: Synthesized) -> bool:
    return variant.mode == "queue"


def test_queue_mode_polls_in_batches_and_reports_item_failures(any_variant: Synthesized) -> None:
    if not queue_mode(any_variant):
        assert not resources(any_variant.body, "AWS::Lambda::EventSourceMapping")
        return
    aws = any_variant.settings.aws
    any_variant.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [input_queue(any_variant.body), "Arn"]},
            "FunctionName": {"Ref": function(any_variant.body)},
            "BatchSize": aws.batch_size,
            "MaximumBatchingWindowInSeconds": aws.batching_window_seconds,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            # no more pollers than the function may run at once: throttles would burn receives
            "ScalingConfig": {"MaximumConcurrency": max(2, aws.reserved_concurrency)},
        },
    )


def test_queue_mode_input_queue_hides_messages_6x_the_timeout_and_redrives_to_the_dlq(
    any_variant: Synthesized,
) -> None:
    if not queue_mode(any_variant):
        assert len(resources(any_variant.body, "AWS::SQS::Queue")) == 1  # only the DLQ
        return
    aws = any_variant.settings.aws
    queue = props(any_variant.body["Resources"][input_queue(any_variant.body)])
    assert queue["VisibilityTimeout"] >= 6 * aws.timeout_seconds
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_letter_queue(any_variant.body), "Arn"]},
        "maxReceiveCount": aws.max_receive_count,
    }
    assert queue["KmsMasterKeyId"] == key_arn(any_variant)
    # the DLQ keeps messages longer than the input queue, so none expire on the way
    dlq = props(any_variant.body["Resources"][dead_letter_queue(any_variant.body)])
    assert dlq["MessageRetentionPeriod"] > queue.get("MessageRetentionPeriod", 4 * 24 * 3600)


def test_queue_mode_only_this_bucket_may_send_to_the_input_queue(any_variant: Synthesized) -> None:
    if not queue_mode(any_variant):
        return
    body = any_variant.body
    queue = input_queue(body)
    (policy,) = [p for p in resources(body, "AWS::SQS::QueuePolicy").values() if props(p)["Queues"] == [{"Ref": queue}]]
    statements = props(policy)["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    bucket_name = render(props(body["Resources"][main_bucket(body)])["BucketName"])
    assert render(allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == f"arn:${{AWS::Partition}}:s3:::{bucket_name}"
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert any(s["Effect"] == "Deny" and s["Condition"] == TLS_ONLY_FIELDS["Condition"] for s in statements)


def test_key_lets_s3_encrypt_messages_for_the_queue(any_variant: Synthesized) -> None:
    any_variant.template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "s3.amazonaws.com"},
                                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                            }
                        )
                    ]
                )
            },
        },
    )


# --- direct mode -------------------------------------------------------------------------------


def test_direct_mode_retries_ages_out_and_sends_failures_to_the_dlq(any_variant: Synthesized) -> None:
    if queue_mode(any_variant):
        assert not resources(any_variant.body, "AWS::Lambda::EventInvokeConfig")
        return
    aws = any_variant.settings.aws
    any_variant.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": function(any_variant.body)},
            "Qualifier": "$LATEST",
            "MaximumRetryAttempts": aws.retry_attempts,
            "MaximumEventAgeInSeconds": aws.max_event_age_seconds,
            "DestinationConfig": {
                "OnFailure": {"Destination": {"Fn::GetAtt": [dead_letter_queue(any_variant.body), "Arn"]}}
            },
        },
    )


def test_direct_mode_only_this_bucket_in_this_account_may_invoke(any_variant: Synthesized) -> None:
    body = any_variant.body
    permissions = resources(body, "AWS::Lambda::Permission")
    if queue_mode(any_variant):
        assert not permissions
        return
    (permission,) = permissions.values()
    bucket_name = render(props(body["Resources"][main_bucket(body)])["BucketName"])
    assert props(permission)["Principal"] == "s3.amazonaws.com"
    assert props(permission)["Action"] == "lambda:InvokeFunction"
    assert render(props(permission)["SourceArn"]) == f"arn:${{AWS::Partition}}:s3:::{bucket_name}"
    assert props(permission)["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_direct_mode_notifications_invoke_the_function(any_variant: Synthesized) -> None:
    if queue_mode(any_variant):
        return
    config = props(any_variant.body["Resources"][main_bucket(any_variant.body)])["NotificationConfiguration"]
    targets = {render(c["Function"]) for c in config["LambdaConfigurations"]}
    assert targets == {"${" + function(any_variant.body) + ".Arn}"}
