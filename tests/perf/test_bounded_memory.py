"""Memory does not grow with the file: measured peaks for a file and one four times bigger.

The 1 GB figures (peak RSS of a whole process) come from `python bench/run.py --only big`;
these tests prove the property itself on both engines' read paths, quickly.
"""

from __future__ import annotations

import gzip
import io
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.response import StreamingBody
from botocore.stub import Stubber

from dockline.aws.store import S3Store
from dockline.config import LocalSettings, PipelineSettings, Settings
from dockline.local.engine import LocalEngine, RunSummary
from dockline.memory import MemoryDeadLetters, MemoryTopic
from dockline.models import ConflictPolicy, ObjectRef, Outcome, Record, Status, WriteReport
from dockline.pipeline import Pipeline
from dockline.ports import Ledger

# One ledger batch (5,000 records) plus one 1 MB block of lines being decoded, with room.
BATCH_BOUND = 40_000_000
LINE = b'{"id": "r-%09d", "device": "thermo-042", "temp": 21.5, "hum": 0.43, "ok": true}\n'


class GeneratedLines(io.RawIOBase):
    """``count`` NDJSON lines made on the fly: the source itself holds nothing."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.made = 0
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        while len(self.pending) < len(buffer) and self.made < self.count:
            self.pending += b"".join(LINE % i for i in range(self.made, min(self.made + 512, self.count)))
            self.made = min(self.made + 512, self.count)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


class CountingLedger(Ledger):
    """Keeps counts only, so the measure is the pipeline's own memory."""

    def __init__(self) -> None:
        self.records = 0

    def begin(self, ref: ObjectRef, *, now: str) -> Outcome | None:
        return None

    def write(self, ref: ObjectRef, records: Sequence[Record], *, policy: ConflictPolicy, now: str) -> WriteReport:
        self.records += len(records)
        return WriteReport(written=tuple(r.pk for r in records))

    def settle(self, outcome: Outcome, *, now: str) -> bool:
        return True

    def mark_notified(self, outcome: Outcome) -> None:
        return None

    def discard(self, ref: ObjectRef) -> None:
        return None

    def reopen(self, ref: ObjectRef, *, now: str) -> bool:
        return False


def peak_bytes(run: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_local_engine_memory_does_not_grow_with_a_gzipped_ndjson_file(tmp_path: Path) -> None:
    peaks = {}
    for count in (40_000, 160_000):
        # GIVEN a gzipped NDJSON file of `count` records in a fresh data dir
        data_dir = tmp_path / f"data-{count}"
        path = data_dir / "bucket" / "incoming" / "readings.ndjson.gz"
        path.parent.mkdir(parents=True)
        with gzip.open(path, "wb", compresslevel=1) as out:
            for start in range(0, count, 4096):
                out.write(b"".join(LINE % i for i in range(start, min(start + 4096, count))))
        engine = LocalEngine(data_dir, replace(Settings(), local=LocalSettings(settle_seconds=0)))
        # WHEN it is processed
        summaries: list[RunSummary] = []
        peaks[count] = peak_bytes(lambda e=engine, out=summaries: out.append(e.run_once()))
        [outcome] = summaries[0].outcomes
        assert outcome.status is Status.PROCESSED and outcome.records == count
    # THEN four times the records need about the same memory: a batch's worth, not a file's
    assert peaks[160_000] < 1.3 * peaks[40_000] + 2_000_000, peaks
    assert peaks[160_000] < BATCH_BOUND, peaks


def test_s3_path_streams_the_object_body(tmp_path: Path) -> None:
    peaks = {}
    for count in (40_000, 160_000):
        # GIVEN an S3 object whose body is produced as it is read (a StreamingBody)
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        stubber = Stubber(client)
        size = count * len(LINE % 0)
        body = StreamingBody(io.BufferedReader(GeneratedLines(count)), size)
        stubber.add_response("get_object", {"Body": body, "ContentLength": size})
        ledger = CountingLedger()
        pipeline = Pipeline(
            settings=PipelineSettings(),
            store=S3Store(client=client),
            ledger=ledger,
            notifier=MemoryTopic(),
            dead_letters=MemoryDeadLetters(),
            clock=lambda: datetime.now(UTC),
        )
        ref = ObjectRef(bucket="b", key="incoming/readings.ndjson", version="0123456789abcdef0123456789abcdef")
        # WHEN the pipeline processes it
        with stubber:
            peaks[count] = peak_bytes(lambda p=pipeline, r=ref: p.process(r) and None)
        assert ledger.records == count
    # THEN memory stays flat as the object grows
    assert peaks[160_000] < 1.3 * peaks[40_000] + 2_000_000, peaks
    assert peaks[160_000] < BATCH_BOUND, peaks
