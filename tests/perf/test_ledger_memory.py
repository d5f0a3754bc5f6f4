"""Issue 10, item 5: listing or exporting the whole ledger holds one row at a time.

Measured as a user runs it: the real CLI in a subprocess, its peak RSS taken from
``getrusage(RUSAGE_CHILDREN)`` in a fresh wrapper process whose only child is the CLI
(so no earlier child of the test run counts). The suite uses 1M items; the 5M figure
in the README comes from ``DOCKLINE_PERF_ITEMS=5000000`` with this same test.
Before the fix, `ledger list --json` on 1M items peaked at 3.4 GB.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.ledger_file import build_ledger

ITEMS = int(os.environ.get("DOCKLINE_PERF_ITEMS", "1000000"))
BOUND_BYTES = 100 * 1024 * 1024
REPO = Path(__file__).resolve().parents[2]

# Runs the CLI with stdout to a file, prints the child's peak RSS in KiB (Linux units).
MEASURE = """
import resource, subprocess, sys
with open(sys.argv[1], "wb") as out:
    code = subprocess.run(sys.argv[2:], stdout=out).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss(data_dir: Path, out: Path, *args: str) -> int:
    """Run ``dockline --data-dir data_dir *args`` with stdout to ``out``; its peak RSS in bytes."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "dockline", "--data-dir", str(data_dir), *args]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(out), *argv],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    code, kib = done.stdout.split()
    assert code == "0", done.stderr
    print(f"{' '.join(args)}: peak RSS {int(kib) / 1024:.1f} MiB for {ITEMS:,} items")
    return int(kib) * 1024


@pytest.mark.slow
def test_item5_ledger_list_and_export_of_a_huge_ledger_stay_under_100_mb(tmp_path: Path) -> None:
    # GIVEN a ledger of ITEMS items (1M: ~4 s to build)
    data_dir = tmp_path / "data"
    build_ledger(data_dir, ITEMS)
    out = tmp_path / "out"
    # WHEN all of it is listed as JSON, and exported as NDJSON and CSV
    listed = peak_rss(data_dir, out, "ledger", "list", "--all", "--json")
    listed_lines = _lines(out)
    exported = peak_rss(data_dir, out, "ledger", "export", "--format", "ndjson")
    exported_lines = _lines(out)
    as_csv = peak_rss(data_dir, out, "ledger", "export", "--format", "csv")
    csv_lines = _lines(out)
    # THEN every item came out ("[", one line each, "]"; a CSV header) ...
    assert (listed_lines, exported_lines, csv_lines) == (ITEMS + 2, ITEMS, ITEMS + 1)
    # ... and no process went past 100 MB
    assert max(listed, exported, as_csv) < BOUND_BYTES, (listed, exported, as_csv)


def _lines(path: Path) -> int:
    count = 0
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            count += block.count(b"\n")
    return count
