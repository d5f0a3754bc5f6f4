"""The SQS dead-letter queue: the three message shapes, peek-style listing, redrive."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from dockline.aws.deadletters import (
    SHAPE_DESTINATION,
    SHAPE_DOCKLINE,
    SHAPE_S3_EVENT,
    SHAPE_UNRECOGNISED,
    SQSDeadLetters,
    list_dead_letters,
    queue_url_from_stack,
    redrive_aws,
    show_dead_letter,
)
from dockline.aws.handler import handle
from dockline.aws.runtime import Clients
from dockline.config import AwsSettings, Settings
from dockline.errors import DocklineError, UsageError
from dockline.models import DeadLetter, ObjectRef
from tests.aws.conftest import TABLE
from tests.aws.world import World, s3_record

EVENTS = Path(__file__).resolve().parents[1] / "events"


@pytest.fixture
def world(moto: None) -> World:
    return World()


def dlq(world: World) -> SQSDeadLetters:
    return SQSDeadLetters(world.dlq_url, client=world.sqs, wait_seconds=0)


def clients(world: World) -> Clients:
    made = Clients()
    for name in ("s3", "dynamodb", "sns", "sqs"):
        made.provide(name, getattr(world, name))
    return made


@pytest.fixture
def redrive_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the CLI finds the table and topic when it redrives (else: stack outputs)."""
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("TOPIC_ARN", world.topic_arn)


def redrive(world: World, ids: list[str] | None, *, dry_run: bool = False) -> list[str]:
    return list(
        redrive_aws(
            world.dlq_url, ids=ids, dry_run=dry_run, settings=Settings(), clients=clients(world), wait_seconds=0
        )
    )


def test_a_sent_letter_is_listed_and_listing_does_not_consume_it(world: World) -> None:
    # GIVEN one dead letter sent by the pipeline
    ref = ObjectRef("landing", "incoming/bad.json", "0" * 32, size=7, event_time="2026-11-27T11:00:00Z")
    dlq(world).send(DeadLetter("landing/incoming/bad.json@0", ref, "truncated JSON", 2, "2026-11-27T12:00:00.000Z"))
    # WHEN the queue is listed twice
    first = list(dlq(world).list())
    second = list_dead_letters(world.dlq_url, client=world.sqs, wait_seconds=0)
    # THEN both listings show it, with its reason and attempts; its id is the SQS message id
    assert [(letter.id, letter.ref, letter.reason, letter.attempts) for letter in first] == [
        (second[0].id, ref, "truncated JSON", 2)
    ]
    assert first[0].extra["shape"] == SHAPE_DOCKLINE
    assert first[0].failed_at == "2026-11-27T12:00:00.000Z"
    # AND show finds it by id; an unknown id is None
    shown = show_dead_letter(world.dlq_url, first[0].id, client=world.sqs, wait_seconds=0)
    assert shown is not None
    assert shown.ref == ref
    assert show_dead_letter(world.dlq_url, "nope", client=world.sqs, wait_seconds=0) is None


def test_remove_deletes_only_that_letter(world: World) -> None:
    queue = dlq(world)
    for key in ("incoming/a.json", "incoming/b.json"):
        queue.send(DeadLetter(key, ObjectRef("landing", key, "0" * 32), "bad", 1, "2026-11-27T12:00:00.000Z"))
    letters = {letter.ref.key: letter for letter in queue.list()}
    queue.remove(letters["incoming/a.json"].id)
    assert [letter.ref.key for letter in queue.list()] == ["incoming/b.json"]


def test_all_three_message_shapes_and_garbage_are_understood(world: World) -> None:
    aws = AwsSettings(max_receive_count=5, retry_attempts=2)
    # GIVEN a raw S3 event moved by SQS after maxReceiveCount (queue mode)
    raw = {"Records": [s3_record("landing", "incoming/queue mode.json", etag="1" * 32)]}
    world.sqs.send_message(QueueUrl=world.dlq_url, MessageBody=json.dumps(raw))
    # AND the same from Lambda's asynchronous DLQ, with the error as a message attribute
    world.sqs.send_message(
        QueueUrl=world.dlq_url,
        MessageBody=json.dumps({"Records": [s3_record("landing", "incoming/async.json", etag="2" * 32)]}),
        MessageAttributes={"ErrorMessage": {"DataType": "String", "StringValue": "Task timed out after 60.00 seconds"}},
    )
    # AND a Lambda on-failure destination record (direct mode)
    world.sqs.send_message(
        QueueUrl=world.dlq_url, MessageBody=(EVENTS / "lambda_destination_on_failure.json").read_text()
    )
    # AND something that is no event at all
    world.sqs.send_message(QueueUrl=world.dlq_url, MessageBody="hello")
    # WHEN listed
    letters = {
        letter.ref.key: letter
        for letter in SQSDeadLetters(world.dlq_url, client=world.sqs, aws=aws, wait_seconds=0).list()
    }
    # THEN each names its object, with a reason a person can read
    queue = letters["incoming/queue mode.json"]
    assert (queue.extra["shape"], queue.attempts, queue.ref.version) == (SHAPE_S3_EVENT, 5, "1" * 32)
    assert queue.reason == "ran out of retries: SQS moved it here after 5 receives from the input queue"
    lambda_dlq = letters["incoming/async.json"]
    assert lambda_dlq.reason == "Lambda gave up after 3 attempts: Task timed out after 60.00 seconds"
    destination = letters["incoming/retried away.json"]
    assert destination.extra["shape"] == SHAPE_DESTINATION
    assert destination.attempts == 3
    assert destination.reason.startswith(
        "Lambda gave up (RetriesExhausted) after 3 attempts: 1 of 1 files must be retried"
    )
    assert destination.failed_at == "2026-11-27T12:03:10.021Z"
    garbage = letters[""]
    assert garbage.extra["shape"] == SHAPE_UNRECOGNISED
    assert garbage.reason.startswith("not a file dockline can redrive (the body is not JSON): hello")


def test_redrive_of_a_fixed_object_processes_it_and_removes_the_letter(world: World, redrive_env: None) -> None:
    # GIVEN a broken file that was failed and dead-lettered by the handler
    world.put("incoming/order.json", '{"id": "o-7", "total": ')
    handle(world.drain_input(), world.engine)
    [letter] = dlq(world).list()
    world.notifications()
    # AND the file was fixed by uploading it again (its own event is lost, say)
    world.put("incoming/order.json", '{"id": "o-7", "total": 12.5}')
    world.drain_input()
    # WHEN a dry run is asked for, nothing changes
    assert redrive(world, [letter.id], dry_run=True) == [
        f"would process the new version: incoming/order.json ({letter.id})"
    ]
    assert world.records() == {}
    # WHEN it is redriven
    lines = redrive(world, [letter.id])
    # THEN the new version is processed and notified, and the letter is gone
    assert lines == ["incoming/order.json: process the new version -> processed"]
    assert world.records()["o-7"]["payload"]["total"] == 12.5
    assert [n["subject"] for n in world.notifications()] == ["S3 Event Processed"]
    assert list(dlq(world).list()) == []


def test_redrive_of_an_unchanged_bad_file_leaves_the_letter_and_sends_no_new_one(
    world: World, redrive_env: None
) -> None:
    world.put("incoming/still-bad.json", "[1, 2]")
    handle(world.drain_input(), world.engine)
    [letter] = dlq(world).list()
    lines = redrive(world, None)
    assert lines == [
        "incoming/still-bad.json: reprocess (unchanged) -> failed: the document is an array, not a JSON object "
        '(set records = "split" to ingest one record per element) (left in the DLQ)'
    ]
    assert [x.id for x in dlq(world).list()] == [letter.id]
    [marker] = world.markers().values()
    assert marker["status"] == "failed"


def test_redrive_of_an_unchanged_file_that_ran_out_of_retries_processes_it(world: World, redrive_env: None) -> None:
    # GIVEN SQS moved a raw S3 event here (the table was throttled for too long); the object is fine
    etag = world.put("incoming/fine.json", '{"id": "fine"}')
    world.drain_input()
    raw = {"Records": [s3_record(world.bucket, "incoming/fine.json", etag=etag)]}
    world.sqs.send_message(QueueUrl=world.dlq_url, MessageBody=json.dumps(raw))
    # WHEN everything is redriven
    assert redrive(world, None) == ["incoming/fine.json: reprocess (unchanged) -> processed"]
    # THEN the file is processed and the queue is empty
    assert list(world.records()) == ["fine"]
    assert list(dlq(world).list()) == []


def test_redrive_skips_deleted_objects_and_unknown_messages_and_refuses_unknown_ids(
    world: World, redrive_env: None
) -> None:
    world.sqs.send_message(
        QueueUrl=world.dlq_url,
        MessageBody=json.dumps({"Records": [s3_record(world.bucket, "incoming/deleted.json", etag="3" * 32)]}),
    )
    world.sqs.send_message(QueueUrl=world.dlq_url, MessageBody="garbage")
    lines = sorted(redrive(world, None))
    assert lines[0].startswith("?: skip: not a file reference")
    assert lines[1] == "incoming/deleted.json: skip: the object no longer exists -> left in the DLQ"
    assert len(list(dlq(world).list())) == 2
    with pytest.raises(UsageError, match="no dead letter with id 'nope'"):
        redrive(world, ["nope"])


def test_the_queue_url_comes_from_the_stack_outputs(moto: None) -> None:
    # (moto's CloudFormation needs packages this project does not install: botocore's
    # Stubber answers DescribeStacks instead, as CloudFormation does)
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/Dockline-DeadLetterQueue"
    outputs = [
        {"OutputKey": "TableName", "OutputValue": "events"},
        {"OutputKey": "DeadLetterQueueUrl", "OutputValue": url},
    ]
    stack = {"StackName": "Dockline", "CreationTime": "2026-11-27T00:00:00Z", "StackStatus": "CREATE_COMPLETE"}
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", {"Stacks": [{**stack, "Outputs": outputs}]}, {"StackName": "Dockline"})
        stub.add_client_error(
            "describe_stacks",
            "ValidationError",
            "Stack with id Missing does not exist",
            expected_params={"StackName": "Missing"},
        )
        stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "Bare"})
        assert queue_url_from_stack("Dockline", client=cfn) == url
        with pytest.raises(DocklineError, match="stack 'Missing' does not exist"):
            queue_url_from_stack("Missing", client=cfn)
        with pytest.raises(DocklineError, match="stack 'Bare' has no output 'DeadLetterQueueUrl'"):
            queue_url_from_stack("Bare", client=cfn)


def test_redrive_finds_table_and_topic_in_the_stack_outputs_without_environment(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no TABLE_NAME/TOPIC_ARN here, but a deployed stack that names them
    monkeypatch.delenv("TABLE_NAME", raising=False)
    monkeypatch.delenv("TOPIC_ARN", raising=False)
    etag = world.put("incoming/s.json", '{"id": "s"}')
    world.drain_input()
    world.sqs.send_message(
        QueueUrl=world.dlq_url,
        MessageBody=json.dumps({"Records": [s3_record(world.bucket, "incoming/s.json", etag=etag)]}),
    )
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    outputs = [
        {"OutputKey": "TableName", "OutputValue": TABLE},
        {"OutputKey": "TopicArn", "OutputValue": world.topic_arn},
    ]
    stack = {"StackName": "Dockline", "CreationTime": "2026-11-27T00:00:00Z", "StackStatus": "CREATE_COMPLETE"}
    made = clients(world).provide("cloudformation", cfn)
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", {"Stacks": [{**stack, "Outputs": outputs}]}, {"StackName": "Dockline"})
        lines = list(redrive_aws(world.dlq_url, ids=None, settings=Settings(), clients=made, wait_seconds=0))
    # THEN the redrive used them
    assert lines == ["incoming/s.json: reprocess (unchanged) -> processed"]
    assert list(world.records()) == ["s"]
