"""`dockline dlq ... --queue-url` against an SQS dead-letter queue on moto, through the CLI."""

from __future__ import annotations

import json

import boto3
import pytest
from typer.testing import CliRunner

from dockline.aws.deadletters import dead_letter_body
from dockline.cli import app
from dockline.models import DeadLetter, ObjectRef


@pytest.mark.usefixtures("moto")
def test_dlq_list_and_show_read_the_aws_queue(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a dead-letter queue holding one dockline dead letter
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="dockline-dlq")["QueueUrl"]
    letter = DeadLetter(
        id="b/incoming/bad.json@0123456789abcdef0123456789abcdef",
        ref=ObjectRef("b", "incoming/bad.json", "0123456789abcdef0123456789abcdef"),
        reason="truncated JSON: the document ends early at line 1, column 7",
        attempts=1,
        failed_at="2026-11-27T01:02:03.000Z",
    )
    sqs.send_message(QueueUrl=url, MessageBody=dead_letter_body(letter))
    runner = CliRunner()
    # WHEN `dlq list --json --queue-url` runs
    listed = runner.invoke(app, ["--data-dir", str(tmp_path / "unused"), "dlq", "list", "--json", "--queue-url", url])
    # THEN it explains the failure in plain words, and leaves the message in the queue
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert (row["key"], row["reason"], row["attempts"]) == ("incoming/bad.json", letter.reason, 1)
    shown = runner.invoke(
        app, ["--data-dir", str(tmp_path / "unused"), "dlq", "show", row["id"], "--json", "--queue-url", url]
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["reason"] == letter.reason
    # AND the local data dir was never created: --queue-url works on AWS only
    assert not (tmp_path / "unused").exists()
