"""Alarms to an encrypted alarm topic, the dashboard, and the stack outputs the CLI reads."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from tests.infra.cfn import dead_letter_queue, function, input_queue, only, props, resources
from tests.infra.conftest import Synthesized


def alarm_topic(variant: Synthesized) -> str:
    return only(variant.body, "AWS::SNS::Topic", lambda r: props(r)["TopicName"].endswith("-alarms"))


def alarm_on(variant: Synthesized, namespace: str, metric: str) -> dict:
    (alarm,) = [
        props(a)
        for a in resources(variant.body, "AWS::CloudWatch::Alarm").values()
        if props(a)["Namespace"] == namespace and props(a)["MetricName"] == metric
    ]
    return alarm


def assert_alarms_to_topic(variant: Synthesized, alarm: dict) -> None:
    topic = {"Ref": alarm_topic(variant)}
    assert alarm["AlarmActions"] == [topic]
    assert alarm["OKActions"] == [topic]


def test_alarm_on_function_errors(any_variant: Synthesized) -> None:
    alarm = alarm_on(any_variant, "AWS/Lambda", "Errors")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function(any_variant.body)}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Statistic"]) == ("GreaterThanThreshold", 0, "Sum")
    assert_alarms_to_topic(any_variant, alarm)


def test_alarm_on_throttles(any_variant: Synthesized) -> None:
    alarm = alarm_on(any_variant, "AWS/Lambda", "Throttles")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert_alarms_to_topic(any_variant, alarm)


def test_alarm_when_the_dlq_holds_any_message(any_variant: Synthesized) -> None:
    alarm = alarm_on(any_variant, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    dlq = dead_letter_queue(any_variant.body)
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert_alarms_to_topic(any_variant, alarm)


def test_alarm_when_duration_nears_the_timeout(any_variant: Synthesized) -> None:
    alarm = alarm_on(any_variant, "AWS/Lambda", "Duration")
    timeout_ms = any_variant.settings.aws.timeout_seconds * 1000
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert 0.5 * timeout_ms <= alarm["Threshold"] < timeout_ms
    assert_alarms_to_topic(any_variant, alarm)


def test_alarm_on_oldest_message_age_in_queue_mode_only(any_variant: Synthesized) -> None:
    ages = [
        props(a)
        for a in resources(any_variant.body, "AWS::CloudWatch::Alarm").values()
        if props(a)["MetricName"] == "ApproximateAgeOfOldestMessage"
    ]
    if any_variant.mode != "queue":
        assert not ages
        any_variant.template.resource_count_is("AWS::CloudWatch::Alarm", 4)
        return
    (alarm,) = ages
    queue = input_queue(any_variant.body)
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] > 0
    assert_alarms_to_topic(any_variant, alarm)
    any_variant.template.resource_count_is("AWS::CloudWatch::Alarm", 5)


def test_alarm_topic_is_kms_encrypted_and_tls_only(any_variant: Synthesized) -> None:
    topic = alarm_topic(any_variant)
    key = only(any_variant.body, "AWS::KMS::Key")
    assert props(any_variant.body["Resources"][topic])["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    any_variant.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic}],
            "PolicyDocument": {
                "Statement": [
                    Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
                ]
            },
        },
    )
    # CloudWatch must be able to use the key to publish to the encrypted topic
    any_variant.template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [Match.object_like({"Principal": {"Service": "cloudwatch.amazonaws.com"}})]
                )
            }
        },
    )


def test_alarm_email_subscribes_to_the_alarm_topic(any_variant: Synthesized) -> None:
    email = any_variant.settings.aws.alarm_email
    subs = [
        props(s)
        for s in resources(any_variant.body, "AWS::SNS::Subscription").values()
        if props(s)["TopicArn"] == {"Ref": alarm_topic(any_variant)}
    ]
    assert subs == (
        [{"Protocol": "email", "Endpoint": email, "TopicArn": {"Ref": alarm_topic(any_variant)}}] if email else []
    )


def test_dashboard_shows_invocations_errors_duration_dlq_depth_and_file_metrics(any_variant: Synthesized) -> None:
    (dashboard,) = resources(any_variant.body, "AWS::CloudWatch::Dashboard").values()
    assert props(dashboard)["DashboardName"] == any_variant.settings.aws.stack_name
    body = json.dumps(props(dashboard)["DashboardBody"])
    for needle in (
        '\\"AWS/Lambda\\",\\"Invocations\\"',
        '\\"AWS/Lambda\\",\\"Errors\\"',
        '\\"AWS/Lambda\\",\\"Duration\\"',
        '\\"AWS/SQS\\",\\"ApproximateNumberOfMessagesVisible\\"',
        '\\"Dockline\\",\\"FilesProcessed\\",\\"service\\",\\"dockline\\"',
        '\\"Dockline\\",\\"FilesFailed\\",\\"service\\",\\"dockline\\"',
    ):
        assert needle in body, needle


def test_outputs_the_names_the_cli_reads(any_variant: Synthesized) -> None:
    body = any_variant.body
    template = any_variant.template
    template.has_output("BucketName", {"Value": Match.any_value()})
    template.has_output("TableName", {"Value": {"Ref": only(body, "AWS::DynamoDB::Table")}})
    template.has_output("TopicArn", {"Value": Match.object_like({"Ref": Match.any_value()})})
    template.has_output("DeadLetterQueueUrl", {"Value": {"Ref": dead_letter_queue(body)}})
    assert (body["Outputs"]["DeadLetterQueueUrl"]["Value"]["Ref"]) in resources(body, "AWS::SQS::Queue")
    if any_variant.mode == "queue":
        template.has_output("QueueUrl", {"Value": {"Ref": Match.any_value()}})
    else:
        assert "QueueUrl" not in body["Outputs"]
