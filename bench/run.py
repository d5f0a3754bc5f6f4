"""dockline's benchmark: every figure measured in this run, on this machine, beside its bound.

    python bench/run.py                 # the whole table (about five minutes)
    python bench/run.py --only small    # one scenario (names below); --only may repeat
    python bench/run.py --records 200000 --files 2000 --history 5000   # smaller, for a quick look

Scenarios (see README, "Performance"):
  startup  `dockline --help` and a no-op `run --once` on an empty bucket: median of 11 fresh
           processes, wall and CPU, beside `python -c pass`.
  small    5,000 ~1 KB order files through `dockline run --once` (a fresh process, start-up
           included) against the plain loop a user would write: read, json.loads, sha256, one
           SQLite INSERT + COMMIT per file, WAL, synchronous=NORMAL (no fsync per commit); the same
           loop with synchronous=FULL (an fsync per commit) as a second row; both databases' size.
  ndjson   a 1,000,000-record NDJSON file (~70 MB) through `dockline run --once`, records/s and
           peak RSS, against orjson per line + executemany in one transaction.
  sqlite-utils  the same file: `sqlite-utils insert --nl --pk id` (its defaults) against dockline.
  noop     a `run --once` with nothing new beside 50,000 processed files, against an empty
           bucket (the 50,000-file data dir is built once per bench run, under its temp dir).
  idle     the CPU a watcher (`dockline run`) uses over 30 s with nothing arriving beside the
           50,000 files (/proc/PID/stat utime + stime), and beside an empty bucket at the same time.
  handler  the Lambda handler on moto against the seed article's handler under Powertools'
           @idempotent (bench/seed_idempotent.py: what a reader would write to get the idempotency
           the seed promises) and against the seed's handler verbatim, on the same float-free
           files: files/s and AWS API calls per file.
  steps    the same NDJSON file through a route with a JSON Schema check, and with a trivial
           transform, each against the route with no step (issue 9's speed targets: 2x, 1.3x);
           the three runs interleaved --rounds times (default 3), medians compared.
  import   import time of dockline.aws.handler against `import boto3` alone.
Pairs run back to back; small, noop, sqlite-utils and handler repeat them (--repeat, default 3) and show
the median ratio with its spread. This is a benchmark, not a test: it asserts nothing and the
machine may be noisy; rerun it.
"""

from __future__ import annotations

import argparse
import compileall
import gzip
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
# Piped into a file, the table gets 160 columns instead of 80 (COLUMNS still wins), as the CLI does.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)


def run_measured(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, int]:
    """Run a command; return (wall seconds, peak RSS in MB of that process)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env={**os.environ, **(env or {})}, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {stderr}")
    return elapsed, usage.ru_maxrss // 1024


# -- small files ----------------------------------------------------------------------------
def make_orders(folder: Path, count: int, *, floats: bool = True, seed: int = 1) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        items = [
            {
                "sku": f"SKU-{rng.randrange(10_000):05d}",
                "qty": rng.randrange(1, 5),
                "price": round(rng.uniform(1, 200), 2) if floats else rng.randrange(100, 20_000),
                "name": f"item {rng.randrange(1000)}",
            }
            for _ in range(14)
        ]
        doc = {
            "id": f"order-{i:06d}",
            "customer": f"cust-{rng.randrange(1000):04d}",
            "currency": "EUR",
            "items": items,
            "total": round(rng.uniform(10, 2000), 2) if floats else rng.randrange(1000, 90_000),
            "shipping": {"city": "Lyon", "zip": "69001", "express": rng.random() < 0.3},
        }
        (folder / f"order-{i:06d}.json").write_bytes(orjson.dumps(doc))


RAW_SMALL = """
import hashlib, json, os, sqlite3, sys
folder, db, sync = sys.argv[1], sys.argv[2], sys.argv[3]
conn = sqlite3.connect(db, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL"); conn.execute(f"PRAGMA synchronous={sync}")
conn.execute("CREATE TABLE items (pk TEXT PRIMARY KEY, payload TEXT, sha256 TEXT)")
for entry in os.scandir(folder):
    with open(entry.path, "rb") as f:
        data = f.read()
    doc = json.loads(data)
    digest = hashlib.sha256(data).hexdigest()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO items VALUES (?, ?, ?)", (doc["id"], data.decode(), digest))
    conn.execute("COMMIT")
conn.close()
"""


def bench_small(work: Path, files: int, repeat: int) -> list[tuple[str, str, str, str]]:
    """The plain loop a user would write (json.loads, sha256, one INSERT + COMMIT per file, WAL,
    synchronous=NORMAL) is the bound; the same loop with an fsync per commit (FULL) a second row.
    Each repeat runs the three back to back; dockline gets a fresh data dir of hard links."""
    source = work / "small-files"
    make_orders(source, files)
    config = work / "bench.toml"
    config.write_text("[local]\nsettle_seconds = 0\n")  # the files landed before the run
    size = sum(p.stat().st_size for p in source.iterdir()) / files
    ours, normal, full = [], [], []
    sizes: dict[str, int] = {}
    for n in range(repeat):
        data_dir = work / f"small-{n}"
        linked(source, data_dir / "bucket" / "incoming")
        for sync, rates in (("NORMAL", normal), ("FULL", full)):
            db = work / f"raw-{sync}-{n}.db"
            seconds, _ = run_measured([PY, "-c", RAW_SMALL, str(source), str(db), sync])
            rates.append(files / seconds)
            sizes[sync] = db_bytes(db)
        seconds, _ = run_measured(dockline_argv(data_dir, config, "run", "--once", "--quiet", "--workers", "1"))
        ours.append(files / seconds)
        sizes["dockline"] = db_bytes(data_dir / "dockline.db")
        tables = db_tables(data_dir / "dockline.db")
        shutil.rmtree(data_dir)
    return [
        (
            f"small files: {files:,} x {size:,.0f} B, run --once (start-up included)",
            rate(ours, "files/s"),
            f"{rate(normal, 'files/s')}: plain loop, no fsync",
            ratio(ours, normal),
        ),
        ("", "", f"{rate(full, 'files/s')}: the same, fsync each commit", ratio(ours, full)),
        (
            "  database on disk",
            f"{sizes['dockline'] / 1e6:,.1f} MB",
            f"plain loop: {sizes['NORMAL'] / 1e6:,.1f} MB",
            f"{sizes['dockline'] / sizes['NORMAL']:.2f}x",
        ),
        ("    by table (with its indexes)", tables, "", ""),
    ]


def linked(source: Path, folder: Path) -> None:
    """``folder`` holding a hard link to each file of ``source``: a fresh bucket in milliseconds
    (dockline never writes to an incoming file, so the source stays as it was)."""
    folder.mkdir(parents=True)
    for entry in os.scandir(source):
        os.link(entry.path, folder / entry.name)


def db_bytes(db: Path) -> int:
    """A SQLite database's size on disk, its WAL included."""
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def db_tables(db: Path) -> str:
    """Where a SQLite file's pages go, by table with its indexes (SQLite's dbstat), in MB."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT m.tbl_name, sum(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name"
            " GROUP BY m.tbl_name ORDER BY 2 DESC"
        ).fetchall()
    finally:
        conn.close()
    shown = [f"{name} {size / 1e6:.1f}" for name, size in rows if size >= 50_000]
    rest = sum(size for _, size in rows if size < 50_000)
    return ", ".join([*shown, f"other {rest / 1e6:.1f}"]) + " MB"


def dockline_argv(data_dir: Path, config: Path | None, *argv: str) -> list[str]:
    base = [PY, "-m", "dockline", "--data-dir", str(data_dir)]
    return [*base, *(["--config", str(config)] if config else []), *argv]


def rate(rates: list[float], unit: str) -> str:
    return f"{statistics.median(rates):,.0f} {unit}"


def ratio(ours: list[float], bound: list[float]) -> str:
    """The median of the back-to-back ratios, and their spread when there is more than one."""
    each = [a / b for a, b in zip(ours, bound, strict=True)]
    spread = f" ({min(each):.2f}-{max(each):.2f}, {len(each)} runs)" if len(each) > 1 else ""
    return f"{statistics.median(each):.2f}x{spread}"


# -- NDJSON ---------------------------------------------------------------------------------
RAW_NDJSON = """
import sqlite3, sys, orjson
path, db = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL"); conn.execute("PRAGMA synchronous=NORMAL")
conn.execute("CREATE TABLE items (pk TEXT PRIMARY KEY, payload TEXT)")
def rows():
    with open(path, "rb") as f:
        for line in f:
            yield (orjson.loads(line)["id"], line)
conn.execute("BEGIN")
conn.executemany("INSERT INTO items VALUES (?, ?)", rows())
conn.execute("COMMIT")
"""


def make_ndjson(path: Path, records: int, seed: int = 2) -> None:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for i in range(records):
            out.write(
                orjson.dumps(
                    {
                        "id": f"r-{i:08d}",
                        "device": f"thermo-{rng.randrange(500):03d}",
                        "temp": round(rng.uniform(-20, 40), 2),
                        "hum": round(rng.uniform(0, 1), 3),
                        "ok": True,
                    }
                )
                + b"\n"
            )


def bench_ndjson(work: Path, records: int, repeat: int = 1) -> list[tuple[str, str, str, str]]:
    """``dockline run --once`` on the NDJSON file against orjson per line + executemany in one
    transaction, back to back ``repeat`` times; the last pair's databases are left in ``work``."""
    source = ndjson_file(work, records)  # made once, shared with the sqlite-utils row
    config = work / "bench.toml"
    config.write_text("[local]\nsettle_seconds = 0\n")
    mb = source.stat().st_size / 1e6
    ours, raw, rss, raw_rss = [], [], [], []
    data_dir = work / "ndjson"
    for _ in range(repeat):
        shutil.rmtree(data_dir, ignore_errors=True)
        for old in (work / "raw-ndjson.db", work / "raw-ndjson.db-wal", work / "raw-ndjson.db-shm"):
            old.unlink(missing_ok=True)
        path = data_dir / "bucket" / "incoming" / "readings.ndjson"
        path.parent.mkdir(parents=True)
        os.link(source, path)
        raw_seconds, peak = run_measured([PY, "-c", RAW_NDJSON, str(path), str(work / "raw-ndjson.db")])
        raw.append(records / raw_seconds)
        raw_rss.append(peak)
        seconds, peak = run_measured(dockline_argv(data_dir, config, "run", "--once", "--quiet"))
        ours.append(records / seconds)
        rss.append(peak)
    ours_db, raw_db = db_bytes(data_dir / "dockline.db"), db_bytes(work / "raw-ndjson.db")
    return [
        (
            f"NDJSON: {records:,} records, {mb:,.0f} MB, run --once",
            rate(ours, "records/s"),
            rate(raw, "records/s"),
            ratio(ours, raw),
        ),
        ("  peak RSS", f"{max(rss)} MB", f"{max(raw_rss)} MB", ""),
        (
            "  database on disk",
            f"{ours_db / 1e6:,.0f} MB",
            f"{raw_db / 1e6:,.0f} MB",
            f"{ours_db / raw_db:.2f}x",
        ),
        ("    by table (with its indexes)", db_tables(data_dir / "dockline.db"), "", ""),
    ]


# -- per-record steps (issue 9): a JSON Schema check, a trivial transform ----------------------
STEP_SCHEMA = {
    "type": "object",
    "required": ["id", "device", "temp"],
    "properties": {
        "id": {"type": "string"},
        "device": {"type": "string", "pattern": "^thermo-"},
        "temp": {"type": "number", "minimum": -50, "maximum": 60},
        "hum": {"type": "number", "minimum": 0, "maximum": 1},
        "ok": {"type": "boolean"},
    },
}
STEP_ROUTE = '[[routes]]\nname = "readings"\nprefix = "incoming/"\nsuffixes = [".ndjson"]\n'


def bench_steps(work: Path, records: int, rounds: int = 3) -> list[tuple[str, str, str, str]]:
    """The same NDJSON file through a route with no step, with a schema, with a transform
    that returns its record: each step's time against the plain run's, in the same run.

    The three runs are interleaved ``rounds`` times and each one's median is used: on a
    shared machine one pass of each, back to back, moved the ratios by +-0.3."""
    source = work / "steps-source.ndjson"
    make_ndjson(source, records)
    (work / "reading.json").write_text(json.dumps(STEP_SCHEMA))
    (work / "bench_tx.py").write_text("def same(record, ctx):\n    return record\n")
    steps = {"plain": "", "schema": 'schema = "reading.json"\n', "transform": 'transform = "bench_tx:same"\n'}
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(rounds):
        for name, extra in steps.items():
            data_dir = work / f"steps-{name}-{round_}"
            (data_dir / "bucket" / "incoming").mkdir(parents=True)
            os.link(source, data_dir / "bucket" / "incoming" / "readings.ndjson")  # same bytes, no copy
            config = work / f"steps-{name}.toml"
            config.write_text("[local]\nsettle_seconds = 0\n" + STEP_ROUTE + extra)
            argv = [PY, "-m", "dockline", "--data-dir", str(data_dir), "--config", str(config), "run", "--once"]
            elapsed, _rss = run_measured([*argv, "--quiet"])
            seconds[name].append(elapsed)
            shutil.rmtree(data_dir)
    median = {name: statistics.median(times) for name, times in seconds.items()}
    plain = median["plain"]

    def spread(name: str) -> str:
        ratios = sorted(step / base for step, base in zip(seconds[name], seconds["plain"], strict=True))
        return f"{ratios[0]:.2f}-{ratios[-1]:.2f}"

    return [
        (
            f"NDJSON {records:,} records + JSON Schema check (median of {rounds})",
            f"{records / median['schema']:,.0f} records/s",
            f"{records / plain:,.0f} records/s without it",
            f"{median['schema'] / plain:.2f}x the time, rounds {spread('schema')} (target <= 2x)",
        ),
        (
            f"NDJSON {records:,} records + trivial transform (median of {rounds})",
            f"{records / median['transform']:,.0f} records/s",
            f"{records / plain:,.0f} records/s without it",
            f"{median['transform'] / plain:.2f}x the time, rounds {spread('transform')} (target <= 1.3x)",
        ),
    ]


# -- Lambda handler on moto ----------------------------------------------------------------
HANDLER_BENCH = """
import json, os, sys, time
from urllib.parse import quote_plus
import boto3, botocore.client
from moto import mock_aws

which, folder = sys.argv[1], sys.argv[2]
calls = []
real_call = botocore.client.BaseClient._make_api_call
def counting(self, operation, params):
    calls.append(operation)
    return real_call(self, operation, params)
botocore.client.BaseClient._make_api_call = counting

with mock_aws():
    region = "us-east-1"
    s3 = boto3.client("s3", region_name=region)
    s3.create_bucket(Bucket="bench-bucket")
    boto3.client("dynamodb", region_name=region).create_table(
        TableName="events", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    boto3.client("dynamodb", region_name=region).create_table(
        TableName="idempotency", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    topic = boto3.client("sns", region_name=region).create_topic(Name="events-notify")["TopicArn"]
    os.environ.update(TABLE_NAME="events", TOPIC_ARN=topic, IDEMPOTENCY_TABLE="idempotency")
    names = sorted(os.listdir(folder))
    records = []
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            body = f.read()
        put = s3.put_object(Bucket="bench-bucket", Key="incoming/" + name, Body=body)
        records.append({"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
                        "eventTime": "2026-11-27T00:00:00.000Z", "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "bench-bucket", "arn": "arn:aws:s3:::bench-bucket"},
                               "object": {"key": quote_plus("incoming/" + name, safe="/"), "size": len(body),
                                          "eTag": put["ETag"].strip('"'), "sequencer": "0055AED6DCD90281E5"}}})
    if which.startswith(("seed", "idempotent")):
        sys.path.insert(0, sys.argv[3])
        module = __import__("seed_handler" if which == "seed" else "seed_idempotent")
        handler = module.lambda_handler
    else:
        from dockline.aws.handler import lambda_handler as handler
    # One file per event, as S3 delivers them to a direct trigger; "-10": ten a batch, as SQS
    # delivers them (dockline: ten SQS messages; the seed: one S3 event of ten records, which
    # @idempotent guards as a whole: what it can do with a batch).
    size = 10 if which.endswith("-10") else 1
    events = []
    for start in range(0, len(records), size):
        chunk = records[start:start + size]
        if which == "dockline-10":
            chunk = [{"messageId": f"m{start + i}", "body": json.dumps({"Records": [r]}), "eventSource": "aws:sqs",
                      "attributes": {"ApproximateReceiveCount": "1"}} for i, r in enumerate(chunk)]
        events.append({"Records": chunk})
    calls.clear()
    started = time.perf_counter()
    for event in events:
        handler(event, None)
    elapsed = time.perf_counter() - started
    items = boto3.client("dynamodb", region_name=region).scan(TableName="events", Select="COUNT")["Count"]
    print(json.dumps({"files": len(records), "seconds": elapsed, "calls": len(calls), "items": items,
                      "ops": sorted(set(calls))}))
"""


def bench_handler(work: Path, files: int, repeat: int) -> list[tuple[str, str, str, str]]:
    """dockline's handler against two bounds on the same files: the seed's handler verbatim
    (no idempotency: a redelivery writes and notifies again) and the same handler under
    Powertools' ``@idempotent`` (``bench/seed_idempotent.py``), what a reader of the seed
    would write to get the idempotency it promises: issue 11's bound. ``repeat`` rounds of
    the three, each in a fresh process with its own moto; the ratios are per round."""
    folder = work / "handler-files"
    make_orders(folder, files, floats=False, seed=3)
    rounds: list[dict[str, dict[str, float]]] = []
    for _ in range(repeat):
        results = {}
        for which in ("seed", "idempotent", "dockline", "idempotent-10", "dockline-10"):
            results[which] = _handler_run(which, folder)
        rounds.append(results)
    rate = {which: statistics.median([r[which]["files"] / r[which]["seconds"] for r in rounds]) for which in rounds[0]}
    over_idempotent = [r["idempotent"]["seconds"] / r["dockline"]["seconds"] for r in rounds]
    over_seed = [r["seed"]["seconds"] / r["dockline"]["seconds"] for r in rounds]
    calls = {which: r["calls"] / r["files"] for which, r in rounds[-1].items()}
    # The table holds each file's marker beside its item, so a run that wrote every item counts 2 per file.
    written = rounds[-1]["dockline"]["items"] >= 2 * files
    return [
        (
            f"Lambda handler on moto: {files:,} files (median of {repeat})",
            f"{rate['dockline']:,.0f} files/s",
            f"seed + Powertools @idempotent: {rate['idempotent']:,.0f} files/s",
            f"{statistics.median(over_idempotent):.2f}x ({min(over_idempotent):.2f}-{max(over_idempotent):.2f})",
        ),
        (
            "  the same",
            "",
            f"seed verbatim, no idempotency: {rate['seed']:,.0f} files/s",
            f"{statistics.median(over_seed):.2f}x ({min(over_seed):.2f}-{max(over_seed):.2f})",
        ),
        (
            "  AWS calls per one-record file",
            f"{calls['dockline']:.2f}",
            f"@idempotent: {calls['idempotent']:.2f}; seed: {calls['seed']:.2f}",
            "" if written else f"only {rounds[-1]['dockline']['items']} items and markers!",
        ),
        (
            f"Lambda handler on moto, SQS batches of 10 (median of {repeat})",
            f"{rate['dockline-10']:,.0f} files/s",
            f"the same handler, one file an event: {rate['dockline']:,.0f} files/s",
            _ratio(rounds, "dockline", "dockline-10"),
        ),
        (
            "  the same",
            "",
            f"seed + @idempotent, 10-record events: {rate['idempotent-10']:,.0f} files/s",
            _ratio(rounds, "idempotent-10", "dockline-10"),
        ),
        (
            "  AWS calls per one-record file, batches of 10",
            f"{calls['dockline-10']:.2f}",
            f"one file an event: {calls['dockline']:.2f}; @idempotent, 10-record events: {calls['idempotent-10']:.2f}",
            "" if rounds[-1]["dockline-10"]["items"] >= 2 * files else "items or markers missing!",
        ),
    ]


def _ratio(rounds: list[dict[str, dict[str, float]]], slower: str, faster: str) -> str:
    """Median (min-max) over same-run rounds of how many times faster ``faster`` ran."""
    ratios = [r[slower]["seconds"] / r[faster]["seconds"] for r in rounds]
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def _handler_run(which: str, folder: Path) -> dict[str, float]:
    out = subprocess.run(
        [PY, "-c", HANDLER_BENCH, which, str(folder), str(ROOT / "bench")],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "POWERTOOLS_METRICS_NAMESPACE": "Dockline",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        },
    )
    if out.returncode != 0:
        raise SystemExit(f"handler bench ({which}) failed: {out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- 1 GB, bounded memory ------------------------------------------------------------------
BIG_LINE = b'{"id": "r-%010d", "device": "thermo-%03d", "temp": 21.5, "hum": 0.43, "site": "warehouse-2", "ok": true}\n'

S3_STREAM = """
import io, sys, time
from datetime import UTC, datetime
import boto3
from botocore.response import StreamingBody
from botocore.stub import Stubber
from dockline.aws.store import S3Store
from dockline.config import PipelineSettings
from dockline.memory import MemoryDeadLetters, MemoryTopic
from dockline.models import ObjectRef, WriteReport
from dockline.pipeline import Pipeline
from dockline.ports import Ledger

LINE = __LINE__
count = int(sys.argv[1])

class Lines(io.RawIOBase):
    def __init__(self):
        self.made, self.pending = 0, b""
    def readable(self):
        return True
    def readinto(self, buffer):
        while len(self.pending) < len(buffer) and self.made < count:
            end = min(self.made + 4096, count)
            self.pending += b"".join(LINE % (i, i % 500) for i in range(self.made, end))
            self.made = end
        n = min(len(buffer), len(self.pending))
        buffer[:n], self.pending = self.pending[:n], self.pending[n:]
        return n

class Counting(Ledger):
    records = 0
    def begin(self, ref, *, now): return None
    def write(self, ref, records, *, policy, now):
        Counting.records += len(records)
        return WriteReport(written=tuple(r.pk for r in records))
    def settle(self, outcome, *, now): return True
    def mark_notified(self, outcome): return None
    def discard(self, ref): return None
    def reopen(self, ref, *, now): return False

client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
stubber = Stubber(client)
size = count * len(LINE % (0, 0))
stubber.add_response("get_object", {"Body": StreamingBody(io.BufferedReader(Lines()), size), "ContentLength": size})
pipeline = Pipeline(settings=PipelineSettings(max_object_bytes=2 * size), store=S3Store(client=client),
                    ledger=Counting(), notifier=MemoryTopic(), dead_letters=MemoryDeadLetters(),
                    clock=lambda: datetime.now(UTC))
with stubber:
    outcome = pipeline.process(ObjectRef("b", "incoming/big.ndjson", "0123456789abcdef0123456789abcdef", size=size))
assert outcome.records == count, outcome
""".replace("__LINE__", repr(BIG_LINE))


def bench_big(work: Path, gigabytes: float) -> list[tuple[str, str, str, str]]:
    count = int(gigabytes * 1e9 / len(BIG_LINE % (0, 0)))
    data_dir = work / "big"
    plain = data_dir / "bucket" / "incoming" / "big.ndjson"
    plain.parent.mkdir(parents=True, exist_ok=True)
    with plain.open("wb") as out:
        for start in range(0, count, 8192):
            out.write(b"".join(BIG_LINE % (i, i % 500) for i in range(start, min(start + 8192, count))))
    size_gb = plain.stat().st_size / 1e9
    config = work / "big.toml"
    config.write_text(f"[pipeline]\nmax_object_bytes = {int(3e9)}\n[local]\nsettle_seconds = 0\n")
    argv = [PY, "-m", "dockline", "--data-dir", str(data_dir), "--config", str(config), "run", "--once", "--quiet"]
    seconds, rss = run_measured(argv)
    rows = [
        (
            f"big: {count:,} records, {size_gb:.2f} GB NDJSON, local",
            f"{count / seconds:,.0f} records/s",
            f"peak RSS {rss} MB",
            "target < 250 MB",
        )
    ]
    # the gzip version, in a fresh data dir
    gz_dir = work / "big-gz"
    packed = gz_dir / "bucket" / "incoming" / "big.ndjson.gz"
    packed.parent.mkdir(parents=True)
    with plain.open("rb") as src, gzip.open(packed, "wb", compresslevel=1) as out:
        shutil.copyfileobj(src, out, 1 << 20)
    plain.unlink()
    shutil.rmtree(data_dir)
    argv[4] = str(gz_dir)
    seconds, rss = run_measured(argv)
    rows.append(
        (
            f"  the same, gzip ({packed.stat().st_size / 1e6:,.0f} MB), local",
            f"{count / seconds:,.0f} records/s",
            f"peak RSS {rss} MB",
            "target < 250 MB",
        )
    )
    seconds, rss = run_measured([PY, "-c", S3_STREAM, str(count)])
    rows.append(
        (
            "  the same through S3Store (StreamingBody), AWS path; ledger counts only",
            f"{count / seconds:,.0f} records/s",
            f"peak RSS {rss} MB",
            "target < 250 MB",
        )
    )
    return rows


# -- start-up ------------------------------------------------------------------------------
def startup_samples(argv: list[str], runs: int) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms of the process) for ``runs`` fresh starts of ``argv``."""
    walls, cpus = [], []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((usage.ru_utime + usage.ru_stime) * 1000)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(argv)} failed")
    return walls, cpus


def bench_startup(work: Path, runs: int = 11) -> list[tuple[str, str, str, str]]:
    """``dockline --help`` and a no-op ``run --once`` (empty bucket), median of ``runs`` starts."""
    data_dir = work / "startup"
    script = Path(PY).with_name("dockline")
    cli = [str(script)] if script.exists() else [PY, "-m", "dockline"]
    subprocess.run([*cli, "--data-dir", str(data_dir), "run", "--once"], capture_output=True, check=True)
    python_wall, _ = startup_samples([PY, "-c", "pass"], runs)
    rows = []
    for label, argv in (
        ("dockline --help", [*cli, "--help"]),
        ("dockline run --once, empty bucket", [*cli, "--data-dir", str(data_dir), "run", "--once"]),
    ):
        wall, cpu = startup_samples(argv, runs)
        rows.append(
            (
                f"start-up: {label} (median of {runs}; load {os.getloadavg()[0]:.1f})",
                f"{statistics.median(wall):,.0f} ms ({min(wall):,.0f}-{max(wall):,.0f}),"
                f" CPU {statistics.median(cpu):,.0f} ms",
                f"python -c pass: {statistics.median(python_wall):,.0f} ms",
                "target < 150 ms",
            )
        )
    return rows


# -- history: a no-op run and an idle watcher beside 50,000 processed files -----------------
def processed_data_dir(work: Path, files: int) -> tuple[Path, Path, float]:
    """A data dir whose ``files`` order files are all processed, built once per bench run and
    kept under ``work`` for every scenario that needs it: (data dir, settings, build seconds)."""
    data_dir = work / f"history-{files}"
    config = work / "history.toml"
    marker = work / f"history-{files}.seconds"
    if marker.exists():
        return data_dir, config, float(marker.read_text())
    config.write_text("[local]\nsettle_seconds = 0\n")
    console.print(f"  building a data dir of {files:,} processed files ...", style="dim")
    started = time.perf_counter()
    make_orders(data_dir / "bucket" / "incoming", files, seed=4)
    run_measured(dockline_argv(data_dir, config, "run", "--once", "--quiet"))
    seconds = time.perf_counter() - started
    marker.write_text(str(seconds))
    return data_dir, config, seconds


def empty_data_dir(work: Path, config: Path) -> Path:
    data_dir = work / "history-0"
    if not (data_dir / "dockline.db").exists():
        run_measured(dockline_argv(data_dir, config, "run", "--once", "--quiet"))
    return data_dir


def bench_noop(work: Path, history: int, repeat: int) -> list[tuple[str, str, str, str]]:
    """A ``run --once`` with nothing new, beside ``history`` processed files and beside none,
    run alternately (``repeat`` pairs, back to back): the scan's cost per old file."""
    full, config, built = processed_data_dir(work, history)
    empty = empty_data_dir(work, config)
    ours, bound = [], []
    for _ in range(max(repeat, 3)):
        seconds, _ = run_measured(dockline_argv(full, config, "run", "--once", "--quiet"))
        ours.append(seconds)
        seconds, _ = run_measured(dockline_argv(empty, config, "run", "--once", "--quiet"))
        bound.append(seconds)
    each = [a / b for a, b in zip(ours, bound, strict=True)]
    return [
        (
            f"no-op run --once, {history:,} processed files (start-up included)",
            f"{statistics.median(ours):.2f} s",
            f"empty bucket: {statistics.median(bound):.2f} s",
            f"{statistics.median(each):.2f}x ({min(each):.2f}-{max(each):.2f}, {len(each)} runs)",
        ),
        (f"  (building the {history:,}-file data dir, once per bench run)", f"{built:.0f} s", "", ""),
    ]


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid``, in clock ticks (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def bench_idle(work: Path, history: int, seconds: float) -> list[tuple[str, str, str, str]]:
    """CPU used by a watcher (``dockline run``) with nothing arriving, over ``seconds``, beside
    ``history`` processed files and, at the same time, beside none."""
    full, config, _ = processed_data_dir(work, history)
    empty = empty_data_dir(work, config)
    watchers = {}
    for name, data_dir in (("full", full), ("empty", empty)):
        log = (work / f"watch-{name}.log").open("wb")
        proc = subprocess.Popen(
            dockline_argv(data_dir, config, "run", "--quiet"), stdout=subprocess.DEVNULL, stderr=log
        )
        watchers[name] = (proc, work / f"watch-{name}.log")
    try:
        for proc, log_path in watchers.values():
            deadline = time.monotonic() + 120
            while b"watching" not in log_path.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the watcher did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)
        time.sleep(5)  # past the first scan and the start of the delivery worker
        before = {name: cpu_ticks(proc.pid) for name, (proc, _) in watchers.items()}
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        used = {
            name: (cpu_ticks(proc.pid) - before[name]) / os.sysconf("SC_CLK_TCK") / elapsed * 100
            for name, (proc, _) in watchers.items()
        }
    finally:
        for proc, _ in watchers.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in watchers.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return [
        (
            f"idle watcher (dockline run), {history:,} processed files, {seconds:.0f} s",
            f"{used['full']:.1f} % of a core",
            f"empty bucket, same {seconds:.0f} s: {used['empty']:.1f} %",
            "target < 2 %",
        )
    ]


# -- sqlite-utils ----------------------------------------------------------------------------
def bench_sqlite_utils(work: Path, records: int, repeat: int) -> list[tuple[str, str, str, str]]:
    """``sqlite-utils insert --nl --pk id`` (its defaults) on the NDJSON file, against
    ``dockline run --once`` on the same file, back to back ``repeat`` times."""
    if subprocess.run([PY, "-m", "sqlite_utils", "--version"], capture_output=True, check=False).returncode:
        return [("sqlite-utils insert --nl", "", "sqlite-utils is not installed (pip install -e '.[dev]')", "")]
    path = ndjson_file(work, records)
    config = work / "bench.toml"
    config.write_text("[local]\nsettle_seconds = 0\n")
    ours, theirs = [], []
    for n in range(repeat):
        data_dir = work / f"su-dockline-{n}"
        (data_dir / "bucket" / "incoming").mkdir(parents=True)
        os.link(path, data_dir / "bucket" / "incoming" / path.name)
        seconds, _ = run_measured(dockline_argv(data_dir, config, "run", "--once", "--quiet"))
        ours.append(records / seconds)
        shutil.rmtree(data_dir)
        db = work / f"su-{n}.db"
        insert = ["insert", str(db), "items", str(path), "--nl", "--pk", "id"]
        seconds, _ = run_measured([PY, "-m", "sqlite_utils", *insert])
        theirs.append(records / seconds)
        db.unlink()
    return [
        (
            f"NDJSON: {records:,} records, run --once",
            rate(ours, "records/s"),
            f"sqlite-utils insert --nl --pk id: {rate(theirs, 'records/s')}",
            ratio(ours, theirs),
        )
    ]


def ndjson_file(work: Path, records: int) -> Path:
    """The NDJSON file of ``records`` readings, made once per bench run."""
    path = work / f"readings-{records}.ndjson"
    if not path.exists():
        make_ndjson(path, records)
    return path


# -- import time ---------------------------------------------------------------------------
def import_ms(module: str, runs: int = 7) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [PY, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={
                **os.environ,
                "TABLE_NAME": "events",
                "TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        )
        samples.append(float(out.stdout.strip()) * 1000)
    return statistics.median(samples)


def bench_import() -> list[tuple[str, str, str, str]]:
    ours, boto = import_ms("dockline.aws.handler"), import_ms("boto3")
    return [
        (
            "import dockline.aws.handler (median of 7)",
            f"{ours:,.0f} ms",
            f"import boto3: {boto:,.0f} ms",
            f"+{ours - boto:,.0f} ms",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        choices=["small", "ndjson", "sqlite-utils", "steps", "handler", "import", "startup", "noop", "idle", "big"],
        action="append",
        help="run only these scenarios; 'big' (1 GB, a few minutes) runs only when named",
    )
    parser.add_argument("--gigabytes", type=float, default=1.0, help="size of the 'big' scenario's file")
    parser.add_argument("--files", type=int, default=5000, help="small files (default 5000)")
    parser.add_argument("--records", type=int, default=1_000_000, help="NDJSON records (default 1,000,000)")
    parser.add_argument("--handler-files", type=int, default=500, help="files for the handler scenario")
    parser.add_argument("--history", type=int, default=50_000, help="processed files beside noop and idle")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="how long idle watches the watcher")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="back-to-back rounds for small, ndjson, noop, sqlite-utils and handler (the spread)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the steps scenario")
    args = parser.parse_args()
    chosen = args.only or ["startup", "small", "ndjson", "sqlite-utils", "steps", "noop", "idle", "handler", "import"]
    table = Table(
        "measure",
        "dockline",
        "bound (same run)",
        "ratio",
        title=f"dockline benchmark - {os.cpu_count()} cores, Python {sys.version.split()[0]},"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f} at the start",
    )
    # An installed dockline has its bytecode (pip compiles a wheel's modules when it installs
    # them); this checkout may not (an editable install writes none, and PYTHONDONTWRITEBYTECODE=1
    # stops Python from writing any), and every start would then compile ~60 modules first.
    compileall.compile_dir(ROOT / "src" / "dockline", quiet=1)
    work = Path(tempfile.mkdtemp(prefix="dockline-bench-"))
    try:
        for name in chosen:
            console.print(f"running {name} ...", style="dim")
            if name == "small":
                rows = bench_small(work, args.files, args.repeat)
            elif name == "sqlite-utils":
                rows = bench_sqlite_utils(work, args.records, args.repeat)
            elif name == "startup":
                rows = bench_startup(work)
            elif name == "noop":
                rows = bench_noop(work, args.history, args.repeat)
            elif name == "idle":
                rows = bench_idle(work, args.history, args.idle_seconds)
            elif name == "ndjson":
                rows = bench_ndjson(work, args.records, args.repeat)
            elif name == "steps":
                rows = bench_steps(work, args.records, args.rounds)
            elif name == "handler":
                rows = bench_handler(work, args.handler_files, args.repeat)
            elif name == "big":
                rows = bench_big(work, args.gigabytes)
            else:
                rows = bench_import()
            for row in rows:
                table.add_row(*row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    console.print(table)


if __name__ == "__main__":
    main()
