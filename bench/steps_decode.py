"""Where a per-record step's time goes, without the ledger: decoding alone, and its parts.

    python bench/steps_decode.py [RECORDS]     # default 200,000

Prints microseconds a record (best of 5, the three routes interleaved) for
``RecordStream`` over `bench/run.py`'s NDJSON file on a route with no step, with its JSON
Schema and with its transform that returns the record; then the transform's parts: the
Decimal copy, the context, and dumping the output with Decimals against with floats.
This is a benchmark, not a test: it asserts nothing; the machine may be noisy.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
import timeit
from decimal import Decimal
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import STEP_ROUTE, STEP_SCHEMA, make_ndjson

from dockline.config import load_settings
from dockline.decode import RecordStream
from dockline.jsonx import dumps
from dockline.transforms import TransformContext, _with_decimals

STEPS = {"plain": "", "schema": 'schema = "reading.json"\n', "transform": 'transform = "bench_tx:same"\n'}


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory(prefix="dockline-steps-") as folder:
        work = Path(folder)
        make_ndjson(work / "source.ndjson", records)
        (work / "reading.json").write_text(json.dumps(STEP_SCHEMA))
        (work / "bench_tx.py").write_text("def same(record, ctx):\n    return record\n")
        data = (work / "source.ndjson").read_bytes()
        routes = {}
        for name, extra in STEPS.items():
            (work / f"{name}.toml").write_text(STEP_ROUTE + extra)
            routes[name] = load_settings(work / f"{name}.toml").pipeline
        best: dict[str, float] = {}
        for _ in range(5):
            for name, settings in routes.items():
                started = time.perf_counter()
                stream = RecordStream(io.BytesIO(data), key="incoming/readings.ndjson", settings=settings)
                count = sum(1 for _ in stream.records())
                took = (time.perf_counter() - started) / count * 1e6
                best[name] = min(best.get(name, took), took)
    print("decode only, us a record:", {name: round(us, 2) for name, us in best.items()})
    record = orjson.loads(make_line())
    copied = _with_decimals(record)
    n = 100_000
    parts = {
        "Decimal copy": lambda: _with_decimals(record),
        "context": lambda: TransformContext("r", "k", "b", "v", 1, ""),
        "dumps, Decimals": lambda: dumps(copied),
        "dumps, floats": lambda: dumps(record),
    }
    for what, call in parts.items():
        print(f"{what}: {min(timeit.repeat(call, number=n, repeat=5)) / n * 1e6:.2f} us")
    assert all(type(v) is not float for v in copied.values()) and any(type(v) is Decimal for v in copied.values())


def make_line() -> bytes:
    return b'{"id":"r-00000001","device":"thermo-123","temp":12.34,"hum":0.5,"ok":true}'


if __name__ == "__main__":
    main()
