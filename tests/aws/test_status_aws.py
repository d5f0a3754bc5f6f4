"""`dockline status --aws` as a user runs it: a subprocess against moto's server mode,
the stack found by its outputs (issue 10, item 1's AWS part)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from dockline.aws.handler import handle
from dockline.aws.runtime import build_engine
from dockline.config import Settings
from tests.aws.conftest import REGION, MotoServer
from tests.aws.stack_on_moto import BUCKET, FUNCTION, deploy_stand_in


def dockline(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockline", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def settle(outputs: dict[str, str], files: dict[str, str]) -> None:
    """Put the files and run the real handler on their S3 events: markers as in production."""
    s3 = boto3.client("s3", region_name=REGION)
    records = []
    for key, body in files.items():
        etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())["ETag"].strip('"')
        records.append({
            "eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-12-01T00:00:00.000Z",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "eTag": etag, "size": len(body)}},
        })  # fmt: skip
    engine = build_engine(
        table_name=outputs["TableName"], topic_arn=outputs["TopicArn"], dlq_url=None, settings=Settings()
    )
    handle({"Records": records}, engine)


def put_metric(namespace: str, name: str, dimension: tuple[str, str], value: float) -> None:
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
                "Value": value,
                "Timestamp": datetime.now(UTC),
            }
        ],
    )


@pytest.fixture
def busy_stack(moto_server: MotoServer) -> dict[str, str]:
    """A queue-mode stack with 3 messages waiting, 2 dead letters, one processed and one
    failed file, and CloudWatch datapoints of the function, dockline and the queue."""
    outputs = deploy_stand_in()
    sqs = boto3.client("sqs", region_name=REGION)
    for n in range(3):
        sqs.send_message(QueueUrl=outputs["QueueUrl"], MessageBody=json.dumps({"n": n}))
    for n in range(2):
        sqs.send_message(QueueUrl=outputs["DeadLetterQueueUrl"], MessageBody=json.dumps({"dead": n}))
    settle(outputs, {"incoming/ok.json": '{"id": "a"}', "incoming/bad.json": '{"id": '})
    put_metric("AWS/Lambda", "Invocations", ("FunctionName", FUNCTION), 7)
    put_metric("AWS/Lambda", "Errors", ("FunctionName", FUNCTION), 1)
    put_metric("Dockline", "FilesProcessed", ("service", "dockline"), 5)
    put_metric("AWS/SQS", "ApproximateAgeOfOldestMessage", ("QueueName", "dockline-input"), 1200)
    return outputs


def test_status_aws_json_shows_the_stacks_picture(busy_stack: dict[str, str], tmp_path: Path) -> None:
    # WHEN `dockline status --aws --json` runs in a subprocess (AWS_ENDPOINT_URL at moto)
    result = dockline(tmp_path, "status", "--aws", "--json")
    # THEN it reads the queue, the dead-letter queue, the markers and CloudWatch
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["mode"] == "queue"
    assert (status["queue"]["waiting"], status["queue"]["oldest_age_seconds"]) == (3, 1200)
    assert status["dead_letters"]["waiting"] == 2
    assert (status["states"]["processed"], status["states"]["failed"]) == (1, 1)
    assert status["scan"]["items"] >= 3  # the record item is read too: the cost of a Scan
    assert status["metrics"]["Invocations"] == {"1m": 7, "5m": 7, "15m": 7}
    assert status["metrics"]["Errors"]["15m"] == 1 and status["metrics"]["FilesProcessed"]["5m"] == 5
    assert status["metrics"]["Throttles"]["15m"] == 0
    assert sorted(status["problems"]) == sorted(
        [
            "1 files failed",
            f"2 dead letters wait in {busy_stack['DeadLetterQueueUrl']}",
            "the oldest message has waited 1200 s (more than 900 s)",
        ]
    )
    assert status["healthy"] is False


def test_status_aws_check_exits_1_naming_each_problem(busy_stack: dict[str, str], tmp_path: Path) -> None:
    result = dockline(tmp_path, "status", "--aws", "--check", "--max-backlog-age", "3600")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "problem: 1 files failed",
        f"problem: 2 dead letters wait in {busy_stack['DeadLetterQueueUrl']}",
    ]


def test_status_aws_view_and_a_healthy_check(moto_server: MotoServer, tmp_path: Path) -> None:
    # GIVEN a quiet stack: one processed file, nothing waiting
    outputs = deploy_stand_in()
    settle(outputs, {"incoming/ok.json": '{"id": "a"}'})
    # THEN --check says ok and exits 0; the view names each part
    check = dockline(tmp_path, "status", "--aws", "--check")
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "ok: stack Dockline, 0 waiting, no dead letters"
    view = dockline(tmp_path, "status", "--aws")
    assert view.returncode == 0, view.stderr
    assert "input queue: 0 waiting, 0 in flight, the oldest for unknown" in view.stdout
    assert "dead letters: 0 waiting, 0 in flight" in view.stdout
    assert "files: 1 processed, 0 failed" in view.stdout
    assert "note: the age of the oldest message has no CloudWatch datapoint" in view.stdout


def test_status_aws_without_cloudwatch_degrades_with_a_note(
    busy_stack: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN CloudWatch unreachable (its own endpoint points at a closed port)
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", f"http://127.0.0.1:{closed}")
    result = dockline(tmp_path, "status", "--aws", "--json", "--skip-scan")
    # THEN the rest is shown, with a note saying why the metrics are missing
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["metrics"] == {} and status["states"] is None and status["scan"] is None
    assert status["queue"]["waiting"] == 3
    assert any(note.startswith("CloudWatch metrics are not available") for note in status["notes"])


def test_status_aws_direct_mode_and_usage_errors(moto_server: MotoServer, tmp_path: Path) -> None:
    deploy_stand_in(trigger="direct")
    direct = dockline(tmp_path, "status", "--aws", "--json", "--skip-scan")
    assert direct.returncode == 0, direct.stderr
    assert (json.loads(direct.stdout)["mode"], json.loads(direct.stdout)["queue"]) == ("direct", None)
    watch = dockline(tmp_path, "status", "--aws", "--watch")
    assert watch.returncode == 2 and len(watch.stderr.strip().splitlines()) == 1


def test_status_aws_without_a_stack_is_one_line(moto_server: MotoServer, tmp_path: Path) -> None:
    result = dockline(tmp_path, "status", "--aws")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "dockline: error: stack 'Dockline' does not exist in this account and region"
    ]


@pytest.mark.usefixtures("moto")
def test_metric_windows_sum_the_minutes_that_overlap_them() -> None:
    # GIVEN Invocations datapoints 30 s, 3 min and 10 min old (in-process moto)
    from datetime import timedelta

    from dockline.aws.status import read_metrics

    now = datetime.now(UTC).replace(second=45, microsecond=0) - timedelta(minutes=1)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for age, value in ((timedelta(seconds=30), 1), (timedelta(minutes=3), 10), (timedelta(minutes=10), 100)):
        metric = {"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": "f"}]}
        cloudwatch.put_metric_data(
            Namespace="AWS/Lambda", MetricData=[{**metric, "Value": value, "Timestamp": now - age}]
        )
    # WHEN the metrics are read
    sums, age, notes = read_metrics(cloudwatch, function="f", queue_name="q", now=now)
    # THEN each window sums what falls in it; no queue datapoint is a note, not an error
    assert sums["Invocations"] == {"1m": 1, "5m": 11, "15m": 111}
    assert age is None and len(notes) == 1
