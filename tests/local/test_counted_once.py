"""A file is counted by the run that settled it, never also by a run that found it done.

Two runs (or a run and a watcher) scan the same bucket; the one that claims a file second
finds it settled and announced, and used to report it as its own: two racing `run --once`
printed 1,200 + 1,200 files settled for 2,000 files. The core marks such an outcome
``earlier`` (``Pipeline.resume``); the engines report it and count it nowhere else.
"""

from __future__ import annotations

import re
from pathlib import Path

from dockline.local.engine import LocalEngine
from dockline.models import Status
from tests.local._procs import assert_each_once, dockline, run
from tests.local.conftest import settings


def _put(bucket: Path, count: int) -> list[str]:
    (bucket / "incoming").mkdir(parents=True, exist_ok=True)
    keys = []
    for i in range(count):
        (bucket / "incoming" / f"o-{i:04d}.json").write_text(f'{{"id": "o-{i}", "n": {i}}}')
        keys.append(f"incoming/o-{i:04d}.json")
    return keys


def test_a_file_settled_by_another_run_since_the_scan_is_reported_not_counted(tmp_path: Path) -> None:
    # GIVEN two engines on one data dir, and the first has scanned 30 files (5 in one batch's reach, all small)
    data_dir = tmp_path / "data"
    first = LocalEngine(data_dir, settings())
    _put(first.bucket_dir, 30)
    refs = first.scan().ready
    assert len(refs) == 30
    # WHEN the second engine settles all of them before the first gets to them
    second = LocalEngine(data_dir, settings())
    assert second.run_once(workers=1).count(Status.PROCESSED) == 30
    summary = first.process(refs, workers=1)
    # THEN the first run settled none of them itself and says they were settled meanwhile
    assert summary.count(Status.PROCESSED) == 0
    assert (summary.settled, summary.earlier) == (0, 30)
    assert not summary.errors


def test_a_file_settled_by_another_run_on_the_per_file_path_is_reported_not_counted(tmp_path: Path) -> None:
    # GIVEN a file too big for a batch (the per-file path), scanned by one engine
    data_dir = tmp_path / "data"
    first = LocalEngine(data_dir, settings())
    (first.bucket_dir / "incoming").mkdir(parents=True, exist_ok=True)
    lines = "".join(f'{{"id": "r-{i}", "pad": "{"x" * 100}"}}\n' for i in range(2000))
    (first.bucket_dir / "incoming" / "big.ndjson").write_text(lines)
    refs = first.scan().ready
    # WHEN another engine settles it first
    assert LocalEngine(data_dir, settings()).run_once(workers=1).count(Status.PROCESSED) == 1
    summary = first.process(refs, workers=1)
    # THEN it is the other engine's file
    assert summary.count(Status.PROCESSED) == 0
    assert (summary.settled, summary.earlier) == (0, 1)


def test_two_racing_runs_count_each_file_once_in_their_summaries(tmp_path: Path) -> None:
    # GIVEN 1,500 small files and two `run --once` processes started together
    data_dir = tmp_path / "data"
    keys = _put(data_dir / "bucket", 1500)
    config = tmp_path / "dockline.toml"
    config.write_text("[local]\nsettle_seconds = 0\nconcurrency = 2\n")
    procs = [dockline(data_dir, "run", "--once", "--quiet", config=config) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    last = run(data_dir, "run", "--once", "--quiet", config=config)  # what was busy at the end
    assert last.returncode == 0, last.stderr
    # THEN the summaries' "N files settled" add up to the number of files, whoever won each race
    said = [*(err for _, err in outs), last.stderr]
    counts = [int(m.group(1)) for text in said for m in re.finditer(r"^(\d+) files settled", text, re.M)]
    assert len(counts) == 3, said
    assert sum(counts) == len(keys), said
    assert_each_once(data_dir, keys)
