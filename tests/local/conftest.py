"""Shared fixtures for the local engine's guarantee tests (issue 4).

Everything runs against real files: a data dir in ``tmp_path`` with its bucket
folder and SQLite file. Engines are driven in-process through ``LocalEngine``, or
end to end through ``python -m dockline`` in a subprocess.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockline.config import LocalSettings, PipelineSettings, Settings
from dockline.local.engine import LocalEngine
from dockline.local.queries import list_files, list_items
from dockline.retry import RetryPolicy

TRACEBACK_MARKERS = ("Traceback", 'File "', "\n")


def settings(*, pipeline: PipelineSettings | None = None, **local: Any) -> Settings:
    """Settings with no settle delay (test files are written in one go), plus [local] overrides."""
    return Settings(
        pipeline=pipeline or PipelineSettings(),
        local=LocalSettings(**{"settle_seconds": 0.0, **local}),
    )


def no_sleep_retry(attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, sleep=lambda _seconds: None)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user (``nobody``) can traverse: pytest's own tmp folders are root-only."""
    base = Path(tempfile.mkdtemp(prefix="dockline-shared-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def make_engine(data_dir: Path) -> Iterator[Callable[..., LocalEngine]]:
    """Build LocalEngines on ``data_dir`` (several may share it, like several processes)."""
    engines: list[LocalEngine] = []

    def make(config: Settings | None = None, *, retries: int = 4) -> LocalEngine:
        engine = LocalEngine(data_dir, config or settings())
        engine.pipeline.retry = no_sleep_retry(retries)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.db.close()


@pytest.fixture
def engine(make_engine: Callable[..., LocalEngine]) -> LocalEngine:
    return make_engine()


def drop(engine_or_dir: LocalEngine | Path, key: str, data: bytes | str | Any) -> Path:
    """Write an object into the bucket the way cp would (not through `put`)."""
    bucket = engine_or_dir.bucket_dir if isinstance(engine_or_dir, LocalEngine) else engine_or_dir / "bucket"
    path = bucket.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    elif not isinstance(data, bytes):
        data = json.dumps(data).encode()
    path.write_bytes(data)
    return path


def files_by_key(engine: LocalEngine) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in list_files(engine.db):
        rows.setdefault(row["key"], []).append(row)
    return rows


def the_file(engine: LocalEngine, key: str) -> dict[str, Any]:
    """The one files row of ``key``; fails if there is not exactly one."""
    rows = files_by_key(engine).get(key, [])
    assert len(rows) == 1, f"{key}: expected exactly one object version, got {rows}"
    return rows[0]


def items(engine: LocalEngine) -> dict[str, dict[str, Any]]:
    return {item["pk"]: item for item in list_items(engine.db)}


def messages(engine: LocalEngine, key: str | None = None) -> list[dict[str, Any]]:
    found = engine.topic.messages()
    return [m for m in found if key is None or m["attributes"].get("key") == key]


def letters(engine: LocalEngine, key: str | None = None) -> list[Any]:
    return [letter for letter in engine.dead_letters.list() if key is None or letter.ref.key == key]


def bucket_digest(bucket: Path) -> dict[str, str]:
    """Path -> sha256 (or link target) of everything in the bucket, to prove nothing changed."""
    found: dict[str, str] = {}
    for folder, _dirs, names in os.walk(bucket):
        for name in names:
            path = Path(folder, name)
            rel = path.relative_to(bucket).as_posix()
            found[rel] = (
                "link:" + os.readlink(path)
                if path.is_symlink()
                else hashlib.sha256(path.read_bytes()).hexdigest()
            )
    return found


def assert_one_line_reason(reason: str | None, *words: str) -> None:
    assert reason, "a failed file must carry a reason"
    for marker in TRACEBACK_MARKERS:
        assert marker not in reason, f"reason is not one clean line: {reason!r}"
    for word in words:
        assert word.lower() in reason.lower(), f"{word!r} not in reason {reason!r}"


# -- the CLI in a subprocess -------------------------------------------------------------
def write_config(path: Path, text: str = "") -> Path:
    """A dockline.toml with no settle delay, plus ``text``."""
    path.write_text("[local]\nsettle_seconds = 0\n" + text)
    return path


def cli_command(data_dir: Path, *args: str, config: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "dockline", "--data-dir", str(data_dir)]
    if config is not None:
        command += ["--config", str(config)]
    return command + list(args)


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKLINE_")}
    env["COLUMNS"] = "200"
    return env


def run_cli(
    data_dir: Path, *args: str, config: Path | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(data_dir, *args, config=config),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=data_dir.parent,  # no stray dockline.toml from the repository
        env=cli_env(),
        check=False,
    )


def cli_json(data_dir: Path, *args: str) -> Any:
    done = run_cli(data_dir, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- a slow webhook: keeps files in flight long enough to kill a run mid-batch ----------
@dataclass
class SlowWebhook:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0  # the most requests it was answering at the same time


@pytest.fixture
def slow_webhook() -> Iterator[Callable[[float], SlowWebhook]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(delay_seconds: float) -> SlowWebhook:
        hook = SlowWebhook(url="")
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    hook.in_flight += 1
                    hook.max_in_flight = max(hook.max_in_flight, hook.in_flight)
                time.sleep(delay_seconds)
                with lock:
                    hook.in_flight -= 1
                    hook.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        return hook

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
