"""A small real disk for full-disk tests: a tmpfs of a few MB, mounted for one test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def small_tmpfs(tmp_path: Path, megabytes: int) -> Iterator[Path]:
    """Mount a ``megabytes`` tmpfs under ``tmp_path`` and yield it; unmounted after the test.
    Skips, saying why, where mounting needs root or is refused."""
    if os.geteuid() != 0:
        print("skipped: mounting a small tmpfs needs root (CI runs as root)")
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        print(f"skipped: cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
