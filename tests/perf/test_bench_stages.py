"""bench/small_stages.py, the README's breakdown of a small file's time, runs and adds up.

A smoke test on 40 files (not a timing test: no figure is compared with a bound)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_small_stages_reports_every_stage_and_its_parts_fit_in_the_whole() -> None:
    # WHEN the breakdown runs on a few files
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "small_stages.py"), "--files", "40", "--rounds", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=ROOT,
    ).stdout
    ms = {
        label.strip(): float(value)
        for value, label in re.findall(r"^\s+([\d.]+) ms\s+[\d.]+ us/file\s+(.+)$", out, re.M)
    }
    # THEN each stage, the plain loop's parts and the SQL statements are there
    for stage in ("scan (walk", "decode (hand-over", "claim (one query", "settle (UPDATE", "read", "INSERT + COMMIT"):
        assert any(label.startswith(stage) for label in ms), (stage, out)
    assert any(label.startswith("COMMIT") for label in ms), out
    # AND the stages fit inside the run that holds them
    whole = ms["the command, all of it (main())"]
    processing = ms["processing, all of it (claim to settled)"]
    scan = next(v for k, v in ms.items() if k.startswith("scan (walk"))
    decode = next(v for k, v in ms.items() if k.startswith("decode (hand-over"))
    assert 0 < decode < processing and scan > 0 and scan + processing <= whole, out
