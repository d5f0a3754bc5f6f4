"""Every AWS-facing command honours AWS_ENDPOINT_URL: `dlq list --aws` in a subprocess
against moto's server mode (backfill and status --aws have their own files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3

from dockline.aws.deadletters import dead_letter_body
from dockline.models import DeadLetter, ObjectRef
from tests.aws.conftest import REGION, MotoServer
from tests.aws.stack_on_moto import deploy_stand_in


def test_dlq_list_aws_reads_the_stacks_queue_through_the_endpoint(moto_server: MotoServer, tmp_path: Path) -> None:
    # GIVEN the stack's dead-letter queue on the moto server, holding one letter
    outputs = deploy_stand_in()
    letter = DeadLetter(
        id="b/incoming/bad.json@0123456789abcdef0123456789abcdef",
        ref=ObjectRef("b", "incoming/bad.json", "0123456789abcdef0123456789abcdef"),
        reason="truncated JSON",
        attempts=1,
        failed_at="2026-12-01T00:00:00.000Z",
    )
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=outputs["DeadLetterQueueUrl"], MessageBody=dead_letter_body(letter))
    # WHEN `dockline dlq list --aws --json` runs in a subprocess
    result = subprocess.run(
        [sys.executable, "-m", "dockline", "dlq", "list", "--aws", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    # THEN it found the queue by the stack's output and read it on the server
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert (row["key"], row["reason"]) == ("incoming/bad.json", "truncated JSON")


def test_aws_region_alone_is_enough(moto_server: MotoServer, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # GIVEN only AWS_REGION (botocore alone reads AWS_DEFAULT_REGION)
    deploy_stand_in()
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    # WHEN `status --aws` runs
    result = subprocess.run(
        [sys.executable, "-m", "dockline", "status", "--aws", "--json", "--skip-scan"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    # THEN it finds the stack in that region
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stack"] == "Dockline"
