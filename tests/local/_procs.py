"""Helpers for the process tests (issue 8, Why 7, 8, 10, 13): real `dockline` subprocesses
on one data dir, and a read-only look at its SQLite file that never takes a lock."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ONE_LINE_ERROR = "dockline: error: "


def dockline(data_dir: Path, *args: str, config: Path | None = None, **popen: object) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "dockline", "--data-dir", str(data_dir)]
    if config is not None:
        argv += ["--config", str(config)]
    # PYTHONFAULTHANDLER: a test that finds a process hung sends SIGABRT and reads every
    # thread's stack from its stderr.
    env = {**os.environ, "COLUMNS": "200", "PYTHONFAULTHANDLER": "1"}
    env.pop("DOCKLINE_DATA_DIR", None)
    return subprocess.Popen(
        argv + list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=next(p for p in data_dir.absolute().parents if p.is_dir()),
        **popen,  # type: ignore[arg-type]
    )


def run(
    data_dir: Path, *args: str, config: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = dockline(data_dir, *args, config=config)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def write_config(path: Path, **local: object) -> Path:
    lines = ["[local]", "settle_seconds = 0"] + [f"{k} = {json.dumps(v)}" for k, v in local.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def drop(data_dir: Path, name: str, doc: object) -> None:
    """Put a file into the bucket atomically, as `dockline put` does."""
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{name}.tmp"
    tmp.write_bytes(json.dumps(doc).encode())
    tmp.rename(incoming / name)


def peek(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the ledger as a bystander: read-only, never waiting for a writer."""
    uri = (data_dir / "dockline.db").absolute().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=0.5)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except sqlite3.Error:
            pass
        time.sleep(0.1)
    return False


def assert_each_once(
    data_dir: Path, keys: list[str], *, items_per_key: int = 1, notified_at_least_once: bool = False
) -> None:
    """Every key settled exactly once: one processed version, its items, one notification
    (``notified_at_least_once``: a storage error between publishing and marking it sent may
    publish again, with the same content, as a crash there would)."""
    rows = peek(data_dir, "SELECT key, status, attempts FROM files")
    by_key = {str(k): (s, a) for k, s, a in rows}
    assert len(rows) == len(by_key), "a key was recorded twice"
    missing = [k for k in keys if k not in by_key]
    assert not missing, f"lost: {missing[:5]}"
    assert all(by_key[k][0] == "processed" for k in keys), {k: by_key[k] for k in keys if by_key[k][0] != "processed"}
    items = peek(data_dir, "SELECT count(*) FROM items")[0][0]
    assert items == len(keys) * items_per_key
    sent = peek(data_dir, "SELECT json_extract(attributes, '$.key'), count(*) FROM notifications GROUP BY 1")
    twice = [k for k, n in sent if int(str(n)) > 1]
    if notified_at_least_once:
        distinct = peek(data_dir, "SELECT count(DISTINCT message || attributes) FROM notifications")[0][0]
        assert distinct == len(keys), "a repeated notification differs from the first"
    else:
        assert not twice, f"notified twice: {twice[:5]}"
    assert {str(k) for k, _ in sent} >= set(keys)


def one_line(stderr: str) -> str:
    """The one error message, unwrapped (Rich still folds stderr at 80 columns when it is not
    a terminal; the text helper's part of issue 8 fixes that): one message, no traceback."""
    assert "Traceback" not in stderr, stderr
    assert stderr.startswith(ONE_LINE_ERROR) and stderr.count(ONE_LINE_ERROR) == 1, stderr
    return " ".join(stderr.split())
