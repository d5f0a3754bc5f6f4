"""`dockline backfill` of many objects against moto's server mode, queue mode.

    python bench/backfill_moto.py                 # 10,000 objects
    python bench/backfill_moto.py --objects 2000  # a quick look

Starts `moto_server` on a free port, creates a stand-in of the stack (bucket, input queue,
DLQ, table, topic, with the real stack's output keys) through CloudFormation, puts the
objects (no notification: S3 never announces them), then:

1. runs `dockline backfill --json` in a subprocess (AWS_ENDPOINT_URL at the server) and
   reports its wall time and the messages sent, while a thread here receives and deletes
   the messages as Lambda's poller would (keeping their bodies);
2. settles every message with the real Lambda handler (in this process, batches of 10);
3. runs `dockline backfill --json` again, which must send 0.

Why the drain: moto's SendMessage and ReceiveMessage compute every queue attribute, counts
of messages included, for each message they add or return, so each costs time in proportion
to the queue's length (with 6,000 waiting, one ReceiveMessage of 10 took 7 s here: a 10,000-
message queue makes the run take hours, all of it in moto). AWS has no such cost, and a
deployed queue is drained by the function meanwhile. `--rate` keeps the sender from
outrunning the drainers on this shared 2-core machine.

moto answers over HTTP from one Python process, so the figures measure dockline against
moto, not against AWS (where SendMessageBatch and BatchGetItem answer in milliseconds).
This is a benchmark, not a test: it asserts nothing but prints what it saw.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


# Receivers that keep the queue short: moto's ReceiveMessage reads every queue attribute for
# each message it returns, so a queue that grows makes both sending and receiving slower.
DRAINERS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=None, help="pass --rate N to the backfill")
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
        run(args.objects, env, args.rate)
    finally:
        server.terminate()
        server.wait(timeout=10)


def run(count: int, env: dict[str, str], rate: float | None) -> None:
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

    def backfill(*options: str) -> tuple[float, dict[str, object]]:
        with tempfile.TemporaryDirectory() as cwd:
            began, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(
                [sys.executable, "-m", "dockline", "backfill", "--json", *options],
                cwd=cwd, env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            wall, after = time.monotonic() - began, resource.getrusage(resource.RUSAGE_CHILDREN)
            used = after.ru_utime - cpu.ru_utime + after.ru_stime - cpu.ru_stime
            print(f"  (the dockline process used {used:.1f} s of CPU, peak RSS {after.ru_maxrss / 1024:.0f} MB)")
            return wall, json.loads(done.stdout)

    sqs = boto3.client("sqs")
    bodies: list[dict[str, object]] = []
    stop, lock = threading.Event(), threading.Lock()

    def drain() -> None:
        while True:
            got = sqs.receive_message(QueueUrl=outputs["QueueUrl"], MaxNumberOfMessages=10)
            batch = got.get("Messages", [])
            if not batch and stop.is_set():
                return
            if not batch:
                time.sleep(0.05)
            with lock:
                bodies.extend(sqs_record(m["Body"], message_id=m["MessageId"]) for m in batch)
            if batch:
                entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
                sqs.delete_message_batch(QueueUrl=outputs["QueueUrl"], Entries=entries)  # type: ignore[arg-type]

    drainers = [threading.Thread(target=drain) for _ in range(DRAINERS)]
    for drainer in drainers:
        drainer.start()
    try:
        wall, first = backfill(*(["--rate", str(rate)] if rate else []))
    finally:
        stop.set()
        for drainer in drainers:
            drainer.join()
    rate = float(str(first["sent"])) / wall
    print(f"dockline backfill: {wall:.1f} s wall, {first['sent']} messages sent ({rate:,.0f}/s): {first}")
    print(f"received {len(bodies)} messages from the input queue")
    engine = build_engine(
        table_name=outputs["TableName"], topic_arn=outputs["TopicArn"], dlq_url=None, settings=Settings()
    )
    settled, began = 0, time.monotonic()
    for start in range(0, len(bodies), 10):
        records = bodies[start : start + 10]
        failures = handle({"Records": records}, engine)["batchItemFailures"]
        settled += len(records) - len(failures)
    print(f"the real handler settled {settled} messages in {time.monotonic() - began:.1f} s")
    wall, second = backfill()
    print(f"dockline backfill again: {wall:.1f} s wall, {second['sent']} messages sent: {second}")


if __name__ == "__main__":
    main()
