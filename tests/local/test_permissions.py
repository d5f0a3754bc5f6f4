"""Unreadable files and folders settle as failed (issue 8, What to build 2).

CI runs as root, who can read anything, so the test drops to `nobody` itself: dockline
runs in a subprocess that calls setgroups/setgid/setuid (``preexec_fn``) before it
starts, on a data dir that `nobody` owns, holding a file and a folder only root may read.
"""

from __future__ import annotations

import functools
import json
import os
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import dockline
from tests.local.conftest import cli_command, cli_env, write_config

NOBODY = 65534


def _become_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _runs_as_nobody(python: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import sqlite3, json"],
            preexec_fn=_become_nobody,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0


@functools.cache
def interpreter_for_nobody() -> tuple[str, str]:
    """(python, PYTHONPATH) that `nobody` can run dockline with.

    Our own interpreter when `nobody` may run it; else (a pyenv under /root, say) the
    system's python of the same version, given this environment's site-packages.
    """
    src = str(Path(dockline.__file__).parents[1])
    if _runs_as_nobody(sys.executable):
        return sys.executable, src
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/local/bin/{version}", f"/usr/bin/{version}"):
        if Path(candidate).exists() and _runs_as_nobody(candidate):
            return candidate, os.pathsep.join([src, *site.getsitepackages()])
    pytest.skip(f"running as root, and no {version} interpreter that user nobody may run")


def run_as_user(data_dir: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dockline ARGS` as nobody when we are root (dropped in preexec_fn), else as ourselves."""
    command = cli_command(data_dir, *args, config=config)
    env = {**cli_env(), "HOME": str(data_dir.parent)}
    if os.geteuid() == 0:
        command[0], env["PYTHONPATH"] = interpreter_for_nobody()
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=data_dir.parent,
        env=env,
        preexec_fn=_become_nobody if os.geteuid() == 0 else None,
        check=False,
    )


def _lock(path: Path, mode: int) -> None:
    """Only root may read it now (or, not being root, nobody at all)."""
    if os.geteuid() == 0:
        os.chown(path, 0, 0)
    path.chmod(mode)


def test_why2_unreadable_file_and_folder_fail_with_permission_denied_as_a_non_root_user(shared_dir: Path) -> None:
    # GIVEN a data dir its user owns, holding a good file, a file it may not read and a
    # folder it may not list
    data_dir = shared_dir / "data"
    incoming = data_dir / "bucket" / "incoming"
    (incoming / "sealed").mkdir(parents=True)
    (incoming / "good.json").write_text('{"id": "good"}')
    (incoming / "locked.json").write_text('{"id": "locked"}')
    (incoming / "sealed" / "inside.json").write_text('{"id": "inside"}')
    config = write_config(shared_dir / "dockline.toml")
    if os.geteuid() == 0:
        for folder, _dirs, names in os.walk(data_dir):
            os.chown(folder, NOBODY, NOBODY)
            for name in names:
                os.chown(Path(folder, name), NOBODY, NOBODY)
    _lock(incoming / "locked.json", 0o600 if os.geteuid() == 0 else 0)
    _lock(incoming / "sealed", 0o700 if os.geteuid() == 0 else 0)
    if os.geteuid() != 0 and os.access(incoming / "locked.json", os.R_OK):
        (incoming / "sealed").chmod(0o755)
        pytest.skip("not root, and chmod cannot make a file unreadable to this user (a capability?)")
    try:
        # WHEN that user runs `dockline run --once`, twice
        first = run_as_user(data_dir, config, "run", "--once")
        second = run_as_user(data_dir, config, "run", "--once")
        listed = run_as_user(data_dir, config, "files", "list", "--json")
        dead = run_as_user(data_dir, config, "dlq", "list", "--json")
    finally:
        (incoming / "sealed").chmod(0o755)  # let the fixture clean up when not root
    # THEN the run goes on: the good file is processed, the file and the folder it
    # cannot read are failed with "permission denied", each with a dead letter
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr + second.stderr
    assert "1 processed, 2 failed" in first.stderr, first.stderr
    assert second.returncode == 0, second.stderr
    assert "failed" not in second.stdout, second.stdout  # nothing settled again
    files: dict[str, Any] = {row["key"]: row for row in json.loads(listed.stdout)}
    assert files["incoming/good.json"]["status"] == "processed"
    for key in ("incoming/locked.json", "incoming/sealed/"):
        assert files[key]["status"] == "failed", files[key]
        assert "permission denied" in files[key]["error"]
    assert sorted(letter["key"] for letter in json.loads(dead.stdout)) == ["incoming/locked.json", "incoming/sealed/"]
