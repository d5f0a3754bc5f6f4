"""Where a small file's time goes in `dockline run --once`: wall time by stage, and by SQL statement.

    python bench/small_stages.py [--files 5000] [--rounds 3]

`make bench` compares whole runs against the plain loop; this says where dockline's part goes,
in the same kind of run: the bench's ~1 KB order files, hard-linked into a fresh data dir, read
once beforehand (as the bench's plain loop reads them first: a first read after the links would
pay the inode's atime update), then `dockline run --once --quiet --workers 1` in this process.
Each stage is timed by wrapping its function with a clock (about 0.2 us a call, a few ms in all);
each SQL statement by timing the connection's execute/executemany. The same run, in a fresh
process, beside the plain loop, is the `small` row of `make bench`. Figures are medians of
--rounds runs, in ms for all the files and in us a file.
"""

from __future__ import annotations

import argparse
import functools
import gc
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import make_orders  # bench/run.py: the bench's own files

_STARTED = time.perf_counter()
from dockline.cli import main as dockline_main  # noqa: E402
from dockline.local import engine as engine_module  # noqa: E402

_IMPORTED = time.perf_counter() - _STARTED

import dockline.batch  # noqa: E402
import dockline.local.ledger  # noqa: E402
import dockline.local.topic  # noqa: E402
import dockline.pipeline  # noqa: E402

# (owner, attribute, stage name): the stages of a run, outermost first
STAGES: list[tuple[Any, str, str]] = [
    (engine_module.LocalEngine, "scan", "scan (walk, lstat, lease check, read, hash, seen cache)"),
    (dockline.local.ledger.SQLiteLedger, "begin_batch", "claim (one query + one INSERT a batch)"),
    (dockline.batch, "_decode", "decode (hand-over, lstat, parse, canonical text, records)"),
    (dockline.local.ledger.SQLiteLedger, "write_batch", "items (INSERT a batch)"),
    (dockline.pipeline.Pipeline, "_classify", "outcome of each file"),
    (dockline.local.ledger.SQLiteLedger, "settle_batch", "settle (UPDATE a batch)"),
    (dockline.local.topic.LocalTopic, "publish_batch", "notifications (INSERT a batch)"),
    (dockline.local.ledger.SQLiteLedger, "mark_notified_batch", "close the outbox (UPDATE a batch)"),
    (engine_module.LocalEngine, "process", "processing, all of it (claim to settled)"),
]


def _timed(function: Callable[..., Any], spent: Counter[str], name: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def clocked(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - started

    return clocked


class _ClockedConnection(sqlite3.Connection):
    spent: ClassVar[Counter[str]] = Counter()  # the current run's, set by one_run

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        started = time.perf_counter()
        try:
            return super().execute(sql, *args)
        finally:
            self.spent[_statement(sql)] += time.perf_counter() - started

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:  # type: ignore[override]
        started = time.perf_counter()
        try:
            return super().executemany(sql, rows)
        finally:
            self.spent[_statement(sql)] += time.perf_counter() - started


def _statement(sql: str) -> str:
    words = " ".join(sql.split())
    return words if len(words) <= 60 else words[:57] + "..."


def one_run(source: Path, work: Path, config: Path) -> tuple[Counter[str], Counter[str], float]:
    data_dir = work / "data"
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True)
    for path in source.iterdir():
        os.link(path, incoming / path.name)
    for path in source.iterdir():
        path.read_bytes()
    stages: Counter[str] = Counter()
    sql: Counter[str] = Counter()
    _ClockedConnection.spent = sql
    originals = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in STAGES]
    connect = sqlite3.connect
    for (owner, attr, name), (_, _, function) in zip(STAGES, originals, strict=True):
        setattr(owner, attr, _timed(function, stages, name))
    sqlite3.connect = functools.partial(connect, factory=_ClockedConnection)  # type: ignore[assignment]
    argv = sys.argv
    sys.argv = ["dockline", "--data-dir", str(data_dir), "--config", str(config), "run", "--once", "--quiet"]
    sys.argv += ["--workers", "1"]
    collecting = [0.0]

    def clock_gc(phase: str, _info: dict[str, int]) -> None:
        collecting[0] += time.perf_counter() * (-1 if phase == "start" else 1)

    gc.callbacks.append(clock_gc)
    started = time.perf_counter()
    try:
        dockline_main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        elapsed = time.perf_counter() - started
        gc.callbacks.remove(clock_gc)
        gc.unfreeze()  # the next round starts as a fresh process would
        stages["garbage collection (in any stage)"] = collecting[0]
        sys.argv = argv
        sqlite3.connect = connect
        for owner, attr, function in originals:
            setattr(owner, attr, function)
        shutil.rmtree(data_dir)
    return stages, sql, elapsed


def plain_split(source: Path, work: Path) -> dict[str, float]:
    """bench/run.py's plain loop (RAW_SMALL) with a clock around each of its parts."""
    db = work / "plain.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE items (pk TEXT PRIMARY KEY, payload TEXT, sha256 TEXT)")
    spent = dict.fromkeys(("read", "json.loads + sha256", "INSERT + COMMIT"), 0.0)
    for entry in os.scandir(source):
        started = time.perf_counter()
        with open(entry.path, "rb") as f:  # the plain loop's own words
            data = f.read()
        read = time.perf_counter()
        doc = json.loads(data)
        digest = hashlib.sha256(data).hexdigest()
        parsed = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO items VALUES (?, ?, ?)", (doc["id"], data.decode(), digest))
        conn.execute("COMMIT")
        spent["read"] += read - started
        spent["json.loads + sha256"] += parsed - read
        spent["INSERT + COMMIT"] += time.perf_counter() - parsed
    conn.close()
    for path in work.glob("plain.db*"):
        path.unlink()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dockline-stages-"))
    try:
        source = work / "orders"
        make_orders(source, args.files)
        config = work / "bench.toml"
        config.write_text("[local]\nsettle_seconds = 0\n")
        runs = [one_run(source, work, config) for _ in range(args.rounds)]
        plain = [plain_split(source, work) for _ in range(args.rounds)]
    finally:
        shutil.rmtree(work)
    files = args.files

    def line(label: str, values: list[float]) -> str:
        ms = statistics.median(values) * 1000
        return f"  {ms:8.1f} ms {ms * 1000 / files:7.1f} us/file  {label}"

    print(f"{files:,} files, {args.rounds} rounds (medians); load {os.getloadavg()[0]:.1f}")
    print(f"  {_IMPORTED * 1000:8.1f} ms                  importing the CLI and the engine (once)")
    print(line("the command, all of it (main())", [elapsed for _, _, elapsed in runs]))
    for name in [name for _, _, name in STAGES] + ["garbage collection (in any stage)"]:
        print(line(name, [stages[name] for stages, _, _ in runs]))
    print("the plain loop of `make bench`, in this process, each part clocked:")
    for part in plain[0]:
        print(line(part, [spent[part] for spent in plain]))
    print("SQL statements (all of their time, whichever stage ran them):")
    statements = Counter[str]()
    for _, sql, _ in runs:
        statements.update(sql)
    for statement, _ in statements.most_common(10):
        print(line(statement, [sql[statement] for _, sql, _ in runs]))


if __name__ == "__main__":
    main()
