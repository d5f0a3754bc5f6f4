"""The deployed wiring, offline: the synthesized queue-mode stack rebuilt in moto, driven end to end.

Everything that decides what reaches the function is read from the synthesized template:
the bucket's notification filters, the queue's visibility timeout and redrive, the table's
key schema, the topic's name and the function's environment. moto then does what S3 does
(sends the matching events to the queue), and the real handler gets exactly those messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from moto import mock_aws

from dockline.aws import handler
from tests.infra.cfn import dead_letter_queue, function, input_queue, main_bucket, only, props
from tests.infra.conftest import Synthesized

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}

MATCHING = "incoming/orders/order 1001.json"  # a space: S3 sends it URL-encoded ("+")
WRONG_PREFIX = "archive/order-1002.json"
WRONG_SUFFIX = "incoming/order-1003.txt"


def resolve(value: Any) -> Any:
    """A template value with pseudo parameters filled in (only what these resources use)."""
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in PSEUDO:
        return PSEUDO[value["Ref"]]
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(str(resolve(p)) for p in parts)
    return value


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and moto; never a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        handler.reset_engine()
        yield
    handler.reset_engine()


class Deployment:
    """The queue-mode stack's data plane, created in moto from the synthesized template."""

    def __init__(self, stack: Synthesized, monkeypatch: pytest.MonkeyPatch) -> None:
        body = stack.body
        resources = body["Resources"]
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)

        # the dead-letter queue, then the input queue with the template's timeout and redrive
        self.dlq_url = self.sqs.create_queue(QueueName="dlq")["QueueUrl"]
        dlq_arn = self._arn(self.dlq_url)
        queue = props(resources[input_queue(body)])
        redrive = queue["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dead_letter_queue(body), "Arn"]}
        self.queue_url = self.sqs.create_queue(
            QueueName="input",
            Attributes={
                "VisibilityTimeout": str(queue["VisibilityTimeout"]),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": redrive["maxReceiveCount"]}
                ),
            },
        )["QueueUrl"]
        self.queue_arn = self._arn(self.queue_url)

        # the bucket, named and versioned as in the template, notifying the queue with its filters
        bucket = props(resources[main_bucket(body)])
        self.bucket = resolve(bucket["BucketName"])
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_bucket_versioning(
            Bucket=self.bucket, VersioningConfiguration={"Status": bucket["VersioningConfiguration"]["Status"]}
        )
        self.filters = [
            {r["Name"]: r["Value"] for r in c["Filter"]["S3Key"]["Rules"]}
            for c in bucket["NotificationConfiguration"]["QueueConfigurations"]
        ]
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": self.queue_arn,
                        "Events": [c["Event"]],
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": r["Name"], "Value": r["Value"]} for r in c["Filter"]["S3Key"]["Rules"]
                                ]
                            }
                        },
                    }
                    for c in bucket["NotificationConfiguration"]["QueueConfigurations"]
                ]
            },
        )

        # the ledger table with the template's key schema and billing
        table = props(resources[only(body, "AWS::DynamoDB::Table")])
        self.table = table["TableName"]
        self.dynamodb.create_table(
            TableName=self.table,
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode=table["BillingMode"],
        )

        # the topic, observed through a queue subscribed to it
        topic_name = stack.settings.aws.topic_name
        topic = props(resources[only(body, "AWS::SNS::Topic", lambda r: props(r)["TopicName"] == topic_name)])
        self.topic_arn = self.sns.create_topic(Name=topic["TopicName"])["TopicArn"]
        self.observer_url = self.sqs.create_queue(QueueName="observer")["QueueUrl"]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=self._arn(self.observer_url))

        # the function's environment, as the template sets it, with the references filled in
        variables = props(resources[function(body)])["Environment"]["Variables"]
        refs = {"TABLE_NAME": self.table, "TOPIC_ARN": self.topic_arn, "DLQ_URL": self.dlq_url}
        for name, value in variables.items():
            monkeypatch.setenv(name, value if isinstance(value, str) else refs[name])

    def _arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Every message now in the queue (received, so hidden for the visibility timeout)."""
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)

    def sqs_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda's SQS poller builds from these messages."""
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": m.get("MessageAttributes", {}),
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }


def s3_keys(messages: list[dict[str, Any]]) -> list[str]:
    """The decoded object keys named by S3 events in these messages (test events name none)."""
    keys = []
    for message in messages:
        body = json.loads(message["Body"])
        keys.extend(unquote_plus(r["s3"]["object"]["key"]) for r in body.get("Records", []))
    return keys


def test_only_matching_files_reach_the_handler_which_ledgers_and_notifies_them(
    aws_env: None, synthesized: dict[str, Synthesized], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the queue-mode stack, rebuilt in moto from its synthesized template
    stack = synthesized["queue"]
    assert stack.mode == "queue"
    deployment = Deployment(stack, monkeypatch)
    assert {"prefix": "incoming/", "suffix": ".json"} in deployment.filters

    # WHEN one matching file and two that must not match land in the bucket
    deployment.s3.put_object(Bucket=deployment.bucket, Key=MATCHING, Body=b'{"id": "1001", "total": 19.99}')
    deployment.s3.put_object(Bucket=deployment.bucket, Key=WRONG_PREFIX, Body=b'{"id": "1002"}')
    deployment.s3.put_object(Bucket=deployment.bucket, Key=WRONG_SUFFIX, Body=b'{"id": "1003"}')

    # THEN the queue holds the s3:TestEvent sent when notifications were switched on, and one
    # event for the matching file only
    messages = deployment.drain(deployment.queue_url)
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b.get("Event") for b in bodies if "Records" not in b] == ["s3:TestEvent"]
    assert s3_keys(messages) == [MATCHING]
    assert "order+1001.json" in json.dumps(bodies)  # URL-encoded, as S3 sends it

    # WHEN the handler gets exactly those messages (test event included), as the SQS event
    # source mapping hands them over
    result = handler.lambda_handler(deployment.sqs_event(messages), None)

    # THEN no message is handed back
    assert result == {"batchItemFailures": []}
    # AND the ledger holds the document under its id, naming the decoded key
    items = deployment.dynamodb.scan(TableName=deployment.table)["Items"]
    by_pk = {item["pk"]["S"]: item for item in items}
    assert by_pk["1001"]["key"]["S"] == MATCHING
    assert by_pk["1001"]["status"]["S"] == "processed"
    # AND nothing in the ledger comes from the filtered files
    ledgered = json.dumps(items)
    assert "1002" not in ledgered and WRONG_PREFIX not in ledgered
    assert "1003" not in ledgered and WRONG_SUFFIX not in ledgered
    # AND one notification went out, about the matching file
    notes = [json.loads(m["Body"]) for m in deployment.drain(deployment.observer_url)]
    assert len(notes) == 1
    assert notes[0]["Subject"] == "S3 Event Processed"
    assert MATCHING in notes[0]["Message"]
    # AND nothing was dead-lettered
    assert deployment.drain(deployment.dlq_url) == []


def test_a_redelivered_event_is_neither_ledgered_nor_notified_twice(
    aws_env: None, synthesized: dict[str, Synthesized], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a file processed once from the messages moto emitted
    deployment = Deployment(synthesized["queue"], monkeypatch)
    deployment.s3.put_object(Bucket=deployment.bucket, Key=MATCHING, Body=b'{"id": "1001"}')
    messages = deployment.drain(deployment.queue_url)
    assert handler.lambda_handler(deployment.sqs_event(messages), None) == {"batchItemFailures": []}
    deployment.drain(deployment.observer_url)

    # WHEN SQS delivers the same messages again (at-least-once)
    result = handler.lambda_handler(deployment.sqs_event(messages), None)

    # THEN nothing changes: one item (beside its file marker, the outbox), no second notification
    assert result == {"batchItemFailures": []}
    items = deployment.dynamodb.scan(TableName=deployment.table)["Items"]
    assert [i["pk"]["S"] for i in items if not i["pk"]["S"].startswith("dockline#")] == ["1001"]
    assert len(items) == 2
    assert deployment.drain(deployment.observer_url) == []
