"""SNSNotifier against moto, observed through an SQS queue subscribed to the topic."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from dockline.aws.notifier import SNSNotifier
from dockline.errors import DocklineError, TransientError
from dockline.models import Notification
from tests.aws.conftest import REGION
from tests.aws.world import fail_with


@pytest.fixture
def topic(moto: None) -> tuple[Any, str, Any, str]:
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    arn = sns.create_topic(Name="events-notify")["TopicArn"]
    url = sqs.create_queue(QueueName="observer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return sns, arn, sqs, url


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    return [
        json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]


def test_publishes_subject_message_and_string_attributes_skipping_empty_ones(topic: Any) -> None:
    sns, arn, sqs, url = topic
    # GIVEN a notification with a unicode key and one empty attribute
    note = Notification(
        "S3 Event Processed",
        "New file processed: incoming/café +=.json",
        {"status": "processed", "key": "incoming/café +=.json", "pk": "17", "records": ""},
    )
    # WHEN it is published
    SNSNotifier(arn, client=sns).publish(note)
    # THEN subscribers get subject, message and the non-empty attributes (SNS rejects empty ones)
    [message] = received(sqs, url)
    assert message["Subject"] == "S3 Event Processed"
    assert message["Message"] == "New file processed: incoming/café +=.json"
    attributes = {k: (v["Type"], v["Value"]) for k, v in message["MessageAttributes"].items()}
    assert attributes == {
        "status": ("String", "processed"),
        "key": ("String", "incoming/café +=.json"),
        "pk": ("String", "17"),
    }


def test_a_subject_is_kept_within_what_sns_accepts(topic: Any) -> None:
    sns, arn, sqs, url = topic
    SNSNotifier(arn, client=sns).publish(Notification("Ünïcode\nsubject " + "x" * 200, "m", {}))
    [message] = received(sqs, url)
    assert len(message["Subject"]) == 100
    assert message["Subject"].isascii()
    assert "\n" not in message["Subject"]


@pytest.mark.parametrize(("code", "status"), [("Throttling", 400), ("InternalError", 500)])
def test_throttling_and_5xx_are_transient(topic: Any, code: str, status: int) -> None:
    sns, arn, _sqs, _url = topic
    sns.meta.events.register("before-call.sns.Publish", fail_with(code, status))
    with pytest.raises(TransientError):
        SNSNotifier(arn, client=sns).publish(Notification("s", "m", {}))


def test_a_missing_topic_is_a_dockline_error_not_a_transient_one(topic: Any) -> None:
    sns, _arn, _sqs, _url = topic
    with pytest.raises(DocklineError) as raised:
        SNSNotifier("arn:aws:sns:us-east-1:123456789012:nope", client=sns).publish(Notification("s", "m", {}))
    assert not isinstance(raised.value, TransientError)
    assert "publishing to SNS topic" in str(raised.value)
