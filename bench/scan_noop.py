"""The cost of a scan with nothing to do, and of a watcher with nothing arriving (issue 11, item 2).

    python bench/scan_noop.py                      # no-op run --once at 0, 10,000, 50,000 files
    python bench/scan_noop.py --idle 50000         # also idle watcher CPU over 30 s at 50,000
    python bench/scan_noop.py --work /tmp/noop     # keep (and reuse) the prepared data dirs
    python bench/scan_noop.py --sizes 0 --stages 50000   # where a no-op scan's time goes, in-process

Each data dir holds N small files that one `run --once` already processed; then a fresh
`dockline run --once` (start-up included) is timed 5 times and the median printed, with the
per-file cost against the empty bucket. Idle CPU is utime + stime from /proc/PID/stat over
30 s of a real `dockline run` (watch mode) after it settled. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
CONFIG = "[local]\nsettle_seconds = 0\n"


def dockline(data_dir: Path, *args: str) -> list[str]:
    return [PY, "-m", "dockline", "--data-dir", str(data_dir), "--config", str(data_dir.parent / "bench.toml"), *args]


def prepare(work: Path, files: int) -> Path:
    """A data dir whose ``files`` small files are all processed (reused when already there)."""
    data_dir = work / f"noop-{files}"
    (work / "bench.toml").write_text(CONFIG)
    marker = data_dir / ".prepared"
    if marker.exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True)
    for i in range(files):
        (incoming / f"order-{i:06d}.json").write_text(f'{{"id": "o{i}", "total": {i % 97}}}\n')
    subprocess.run(
        dockline(data_dir, "run", "--once", "--quiet"), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    marker.touch()
    return data_dir


def noop_seconds(data_dir: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            dockline(data_dir, "run", "--once", "--quiet"),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def idle_cpu(data_dir: Path, seconds: float) -> float:
    """Share of one core a watcher uses over ``seconds`` once its first scan is done."""
    proc = subprocess.Popen(dockline(data_dir, "run", "--quiet"), stdout=subprocess.DEVNULL)
    try:
        time.sleep(5)  # start-up and the first full scan
        before = _cpu(proc.pid)
        time.sleep(seconds)
        used = _cpu(proc.pid) - before
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return used / seconds


def stages(data_dir: Path) -> None:
    """Best of 5, in this process: the parts of one no-op scan."""
    from dockline.config import load_settings
    from dockline.local import scan
    from dockline.local.engine import LocalEngine
    from dockline.local.walk import walk

    engine = LocalEngine(data_dir, load_settings(data_dir.parent / "bench.toml"))
    folder = engine.store.root / "incoming"
    parts = {
        "the seen cache with settled flags (one query)": lambda: scan._known(engine.db),
        "os.scandir of the folder": lambda: list(os.scandir(folder)),
        "os.scandir + DirEntry.stat of each file": lambda: [e.stat(follow_symlinks=False) for e in os.scandir(folder)],
        "the walk (scandir, stat, route match)": lambda: sum(
            1 for _ in walk(engine.store.root, engine.settings.pipeline, [])
        ),
        "the whole scan": engine.scan,
    }
    for label, part in parts.items():
        best = min(_timed(part) for _ in range(5))
        print(f"  {best * 1000:7.1f} ms  {label}")
    engine.db.close()


def _timed(part: object) -> float:
    started = time.perf_counter()
    part()  # type: ignore[operator]
    return time.perf_counter() - started


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,10000,50000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--idle", type=int, default=None, help="files for the idle watcher measurement")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--stages", type=int, default=None, help="files for the in-process profile of one scan")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dockline-noop-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    base: float | None = None
    for files in (int(s) for s in args.sizes.split(",")):
        data_dir = prepare(work, files)
        seconds = noop_seconds(data_dir, args.repeat)
        base = seconds if base is None else base
        per_file = (seconds - base) / files * 1e6 if files else 0.0
        print(
            f"no-op run --once, {files:>6,} processed: {seconds:.3f} s  ({seconds / base:.2f}x, {per_file:.1f} us/file)"
        )
    if args.stages is not None:
        print(f"one no-op scan at {args.stages:,} files, in-process (best of 5):")
        stages(prepare(work, args.stages))
    if args.idle is not None:
        cpu = idle_cpu(prepare(work, args.idle), args.idle_seconds)
        print(f"idle watcher, {args.idle:,} files, {args.idle_seconds:g} s: {cpu:.1%} of a core")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
