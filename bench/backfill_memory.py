"""Does `backfill` hold anything per object? Python allocations of a dry run, traced.

    python bench/backfill_memory.py 2000 6000

For each count: put that many objects in an in-process moto bucket, then trace the Python
allocations of `run_backfill(..., dry_run=True)` (listing, marker checks, the plan) and
print the peak. A flat peak means the walk streams. moto's own objects are made before
tracing starts; its answers during the run are traced too.
"""

from __future__ import annotations

import os
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws
    from tests.aws.conftest import create_table

    from dockline.aws.backfill_run import Targets, run_backfill
    from dockline.aws.runtime import Clients
    from dockline.config import Settings

    for count in [int(arg) for arg in sys.argv[1:]] or [2000, 6000]:
        with mock_aws():
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="dockline-memory")
            create_table(boto3.client("dynamodb"))
            queue = boto3.client("sqs").create_queue(QueueName="input")["QueueUrl"]
            for n in range(count):
                s3.put_object(Bucket="dockline-memory", Key=f"incoming/{n:06}.json", Body=b"{}")
            targets = Targets("dockline-memory", "events", "queue", queue_url=queue)
            tracemalloc.start()
            tally = run_backfill(targets, Settings(), Clients(session=boto3.session.Session()), dry_run=True)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"{count} objects, {tally.sent} planned: peak traced {peak / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
