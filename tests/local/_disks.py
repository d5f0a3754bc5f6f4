"""A small real disk for full-disk tests: a tmpfs of a few MB, mounted for one test."""

from __future__ import annotations

import contextlib
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


def fill(disk: Path, leave: int = 0) -> Path:
    """Take every free byte of ``disk`` (ENOSPC proves it), then give ``leave`` bytes back;
    returns the filler file, to delete when space is to come back."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, filler.stat().st_size - leave)
    return filler
