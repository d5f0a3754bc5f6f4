"""Why 13 (data-dir cases): a read-only data dir, one the user cannot write, a missing
parent of --data-dir: one line, no traceback; read-only commands still work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.local._procs import drop, one_line, run, write_config

# The venv's interpreter lives under /root (mode 0700), so a setuid(65534) child cannot even
# start Python. Root without any capability, with the `noroot` securebits locked, is held to
# the owner's permission bits like any user: a 0555 folder is read-only to it.
POWERLESS = [
    "setpriv",
    "--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked",
    "--bounding-set=-all",
    "--inh-caps=-all",
    "--",
]


def _powerless(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [*POWERLESS, sys.executable, "-m", "dockline", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=data_dir.parent,
        timeout=60,
        check=False,
    )


def _need_setpriv() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop every capability (CI runs as root)")


def test_why13_run_with_a_missing_parent_fails_in_one_line_and_creates_nothing(tmp_path: Path) -> None:
    # GIVEN a --data-dir whose parent folder does not exist (a typo)
    data_dir = tmp_path / "typo" / "data"
    # WHEN run --once (and put) are pointed at it
    result = run(data_dir, "run", "--once")
    # THEN one line, usage exit code, and no tree was created
    assert result.returncode == 2, result.stderr
    assert "does not exist" in one_line(result.stderr)
    assert not (tmp_path / "typo").exists()
    # AND creating the data dir itself under an existing parent stays fine
    ok = run(tmp_path / "data", "run", "--once")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "data" / "dockline.db").exists()


def test_why13_read_commands_on_a_missing_data_dir_say_so_in_one_line(tmp_path: Path) -> None:
    for command in (["files", "list"], ["ledger", "list"], ["notifications", "list"], ["dlq", "list"]):
        result = run(tmp_path / "nothing-here", *command)
        assert result.returncode == 2, (command, result.stderr)
        assert "no dockline data in" in one_line(result.stderr)
    assert not (tmp_path / "nothing-here").exists()


@pytest.fixture
def read_only_data_dir(tmp_path: Path) -> Path:
    """A data dir with one processed file, left by a clean run, then made read-only (0555)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    drop(data_dir, "a.json", {"id": "a-1", "n": 1})
    config = write_config(tmp_path / "dockline.toml")
    assert run(data_dir, "--config", str(config), "run", "--once").returncode == 0
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    yield data_dir
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_why13_read_only_user_can_look_at_a_read_only_data_dir(read_only_data_dir: Path) -> None:
    _need_setpriv()
    data_dir = read_only_data_dir
    assert not (data_dir / "dockline.db-wal").exists()  # a clean close: no WAL index to share
    # GIVEN a user who cannot write the data dir (checked: the child really cannot)
    probe = subprocess.run([*POWERLESS, "touch", str(data_dir / "x")], capture_output=True, check=False)
    assert probe.returncode != 0, "the dropped user can still write: the test would prove nothing"
    # WHEN it runs every read-only command
    for command in (
        ["files", "list", "--json"],
        ["ledger", "list", "--json"],
        ["ledger", "get", "a-1"],
        ["notifications", "list"],
        ["dlq", "list"],
    ):
        result = _powerless(data_dir, *command)
        # THEN each works
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr
    assert '"a-1"' in _powerless(data_dir, "ledger", "list", "--json").stdout
    # AND nothing was created or changed in the data dir
    assert sorted(p.name for p in data_dir.iterdir()) == ["bucket", "dockline.db", "dockline.db.lock"]


def test_why13_read_only_user_can_look_while_a_writer_has_the_wal_open(read_only_data_dir: Path) -> None:
    _need_setpriv()
    import sqlite3

    data_dir = read_only_data_dir
    data_dir.chmod(0o755)
    (data_dir / "dockline.db").chmod(0o644)
    # GIVEN a writer that keeps the WAL and its index open, with a commit only in the WAL
    writer = sqlite3.connect(data_dir / "dockline.db", isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("UPDATE files SET error = 'in the wal only'")
    data_dir.chmod(0o555)
    try:
        # WHEN the read-only user lists files
        result = _powerless(data_dir, "files", "list", "--json")
        # THEN it sees the WAL's commit (not a stale copy)
        assert result.returncode == 0, result.stderr
        assert "in the wal only" in result.stdout
    finally:
        data_dir.chmod(0o755)
        writer.close()


def test_why13_a_data_dir_the_user_cannot_write_fails_run_in_one_line(read_only_data_dir: Path) -> None:
    _need_setpriv()
    for command in (["run", "--once"], ["put", str(read_only_data_dir / "bucket" / "incoming" / "a.json")]):
        result = _powerless(read_only_data_dir, *command)
        assert result.returncode == 1, (command, result.stderr)
        assert "cannot write" in one_line(result.stderr) or "read-only" in one_line(result.stderr)
