"""`dockline backfill` of many objects against moto's server mode, queue mode.

    python bench/backfill_moto.py                 # 10,000 objects
    python bench/backfill_moto.py --objects 2000  # a quick look

Starts `moto_server` on a free port, creates a stand-in of the stack (bucket, input queue,
DLQ, table, topic, with the real stack's output keys) through CloudFormation, puts the
objects (no notification: S3 never announces them), then:

1. runs `dockline backfill --json` in a subprocess (AWS_ENDPOINT_URL at the server) and
   reports its wall time and the messages sent;
2. settles every message with the real Lambda handler (in this process, batches of 10);
3. runs `dockline backfill --json` again, which must send 0.

moto answers over HTTP from one Python process, so the figures measure dockline against
moto, not against AWS (where SendMessageBatch and BatchGetItem answer in milliseconds).
This is a benchmark, not a test: it asserts nothing but prints what it saw.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    args = parser.parse_args()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("AWS_PROFILE", None)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=5)
                break
            except OSError:
                time.sleep(0.1)
        run(args.objects, env)
    finally:
        server.terminate()
        server.wait(timeout=10)


def run(count: int, env: dict[str, str]) -> None:
    import boto3
    from tests.aws.stack_on_moto import BUCKET, deploy_stand_in
    from tests.aws.world import sqs_record

    from dockline.aws.handler import handle
    from dockline.aws.runtime import build_engine
    from dockline.config import Settings

    outputs = deploy_stand_in()
    s3 = boto3.client("s3")
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        keys = [f"incoming/{n // 1000:02}/{n:05}.json" for n in range(count)]
        list(pool.map(lambda k: s3.put_object(Bucket=BUCKET, Key=k, Body=json.dumps({"id": k}).encode()), keys))
    print(f"put {count} objects in {time.monotonic() - started:.1f} s")

    def backfill() -> tuple[float, dict[str, object]]:
        with tempfile.TemporaryDirectory() as cwd:
            began = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "dockline", "backfill", "--json"],
                cwd=cwd, env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            return time.monotonic() - began, json.loads(done.stdout)

    wall, first = backfill()
    rate = float(str(first["sent"])) / wall
    print(f"dockline backfill: {wall:.1f} s wall, {first['sent']} messages sent ({rate:,.0f}/s): {first}")
    sqs = boto3.client("sqs")
    engine = build_engine(
        table_name=outputs["TableName"], topic_arn=outputs["TopicArn"], dlq_url=None, settings=Settings()
    )
    settled, began = 0, time.monotonic()
    while batch := sqs.receive_message(QueueUrl=outputs["QueueUrl"], MaxNumberOfMessages=10).get("Messages", []):
        records = [sqs_record(m["Body"], message_id=m["MessageId"]) for m in batch]
        failures = handle({"Records": records}, engine)["batchItemFailures"]
        sqs.delete_message_batch(
            QueueUrl=outputs["QueueUrl"],
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)],
        )
        settled += len(batch) - len(failures)
    print(f"the real handler settled {settled} messages in {time.monotonic() - began:.1f} s")
    wall, second = backfill()
    print(f"dockline backfill again: {wall:.1f} s wall, {second['sent']} messages sent: {second}")


if __name__ == "__main__":
    main()
