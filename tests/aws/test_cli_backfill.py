"""`dockline backfill` as a user runs it: a subprocess, AWS_ENDPOINT_URL at moto's server
mode, the stack found by its outputs (issue 10, item 7)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from dockline.aws.handler import handle
from dockline.aws.runtime import build_engine
from dockline.config import Settings
from tests.aws.conftest import REGION, MotoServer
from tests.aws.stack_on_moto import BUCKET, deploy_stand_in
from tests.aws.world import sqs_record


def dockline(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m dockline ...` with this process's environment (AWS_ENDPOINT_URL included)."""
    return subprocess.run(
        [sys.executable, "-m", "dockline", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def put(keys: list[str]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"name": key}).encode())


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every message in the queue, as the SQS records Lambda would deliver (deleted)."""
    sqs = boto3.client("sqs", region_name=REGION)
    records: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            records.append(sqs_record(message["Body"], message_id=message["MessageId"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return records


def process(outputs: dict[str, str], records: list[dict[str, Any]]) -> None:
    """The real handler on the messages, against the same moto server."""
    engine = build_engine(
        table_name=outputs["TableName"], topic_arn=outputs["TopicArn"], dlq_url=None, settings=Settings()
    )
    for start in range(0, len(records), 10):
        assert handle({"Records": records[start : start + 10]}, engine) == {"batchItemFailures": []}


def key_of(record: dict[str, Any]) -> str:
    return str(json.loads(record["body"])["Records"][0]["s3"]["object"]["key"])


def test_cli_backfill_against_moto_server_sends_then_sends_nothing(moto_server: MotoServer, tmp_path: Path) -> None:
    # GIVEN a deployed stack (queue mode) and objects it never saw
    outputs = deploy_stand_in()
    keys = [f"incoming/{n}.json" for n in range(12)]
    put([*keys, "incoming/notes.txt", "elsewhere/x.json"])
    # WHEN `dockline backfill` runs in a subprocess, finding everything from the stack's outputs
    first = dockline(tmp_path, "backfill")
    # THEN it sent the 12 matching objects and said so in one summary line
    assert first.returncode == 0, first.stderr
    assert "listed 13, already settled 0, sent 12, skipped 0 by --since, 1 by suffix" in first.stdout
    records = drain(outputs["QueueUrl"])
    assert sorted(key_of(r) for r in records) == sorted(keys)
    # WHEN the real handler processes those messages and the backfill runs again
    process(outputs, records)
    again = dockline(tmp_path, "backfill", "--json")
    # THEN nothing is sent twice
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["listed"], summary["settled"], summary["sent"], summary["finished"]) == (13, 12, 0, True)
    assert drain(outputs["QueueUrl"]) == []


def test_cli_backfill_dry_run_and_overrides(moto_server: MotoServer, tmp_path: Path) -> None:
    # GIVEN resources named by options only (no stack at all)
    sqs = boto3.client("sqs", region_name=REGION)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    from tests.aws.conftest import create_table

    create_table(boto3.client("dynamodb", region_name=REGION))
    queue = sqs.create_queue(QueueName="other-input")["QueueUrl"]
    put(["incoming/a.json", "incoming/b.json"])
    options = ["--bucket", BUCKET, "--table", "events", "--queue-url", queue]
    # WHEN a dry run runs
    dry = dockline(tmp_path, "backfill", "--dry-run", *options)
    # THEN it names what it would send and sends nothing
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would send dockline-landing/incoming/") == 2
    assert "would send 2" in dry.stdout
    assert drain(queue) == []
    # AND a real run with --rate sends both
    sent = dockline(tmp_path, "backfill", "--rate", "50", *options)
    assert sent.returncode == 0 and "sent 2" in sent.stdout
    assert len(drain(queue)) == 2


def test_cli_backfill_errors_are_one_line(moto_server: MotoServer, tmp_path: Path) -> None:
    no_stack = dockline(tmp_path, "backfill")
    assert no_stack.returncode == 1
    assert no_stack.stderr.strip().splitlines() == [
        "dockline: error: stack 'Dockline' does not exist in this account and region"
    ]
    bad_date = dockline(
        tmp_path, "backfill", "--since", "yesterday", "--bucket", "b", "--table", "t", "--queue-url", "q"
    )
    assert bad_date.returncode == 2
    assert len(bad_date.stderr.strip().splitlines()) == 1 and "--since 'yesterday' is not a date" in bad_date.stderr


@pytest.mark.slow
def test_cli_backfill_killed_mid_run_loses_nothing(moto_server: MotoServer, tmp_path: Path) -> None:
    # GIVEN 60 unannounced objects and a slow backfill (--rate 20) in a subprocess
    outputs = deploy_stand_in()
    keys = [f"incoming/{n:02}.json" for n in range(60)]
    put(keys)
    sqs = boto3.client("sqs", region_name=REGION)
    child = subprocess.Popen(
        [sys.executable, "-m", "dockline", "backfill", "--rate", "20"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    try:
        # WHEN it is killed with SIGKILL once some (not all) messages are out
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            attributes = sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["All"])["Attributes"]
            if int(attributes["ApproximateNumberOfMessages"]) >= 10:
                break
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    first = drain(outputs["QueueUrl"])
    assert 10 <= len(first) < 60
    # AND what it sent is processed, and the backfill runs again
    process(outputs, first)
    resumed = dockline(tmp_path, "backfill", "--json")
    # THEN the rerun sends exactly the objects the killed run never sent: nothing is lost
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["sent"] == 60 - len(first)
    rest = drain(outputs["QueueUrl"])
    assert sorted(key_of(r) for r in first + rest) == keys


def test_progress_shows_the_counts_on_a_terminal_and_nothing_when_piped() -> None:
    import io

    from rich.console import Console

    from dockline.aws.backfill import Tally
    from dockline.cli.aws_common import backfill_progress

    terminal = io.StringIO()
    with backfill_progress(Console(file=terminal, force_terminal=True, width=120), enabled=True) as show:
        show(Tally(listed=1500, settled=1200, sent=300))
    assert "listed 1500, settled 1200, sent 300" in terminal.getvalue()
    piped = io.StringIO()
    with backfill_progress(Console(file=piped, width=120), enabled=False) as show:
        show(Tally(listed=1))
    assert piped.getvalue() == ""
