"""Fixtures for the console: a data dir filled by real runs, the console as a real
``dockline console`` subprocess, a real webhook receiver on 127.0.0.1.

The console is served as a subprocess (not uvicorn in a thread) so the tests go through
the command a user runs: its address line, its token, its port check, its signals, and
its own process reading the SQLite file next to the test's writers.
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

READY_SECONDS = 60.0  # a loaded 2-core machine may take long to start Python and import
ADDRESS = re.compile(r"dockline console on (http://\S+?/)(?:\?token=(\S+))?(?:\s|$)")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKLINE_")}
    return {**env, "COLUMNS": "200", **extra}


def cli(data_dir: Path, config: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockline", "--data-dir", str(data_dir), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=data_dir.parent,
        env=cli_env(),
        check=False,
    )


def cli_ok(data_dir: Path, config: Path, *args: str) -> str:
    done = cli(data_dir, config, *args)
    assert done.returncode == 0, f"dockline {' '.join(args)}: {done.stderr}"
    return done.stdout


def drop(data_dir: Path, key: str, data: str | bytes) -> Path:
    """Write an object into the bucket as `cp` would."""
    path = data_dir.joinpath("bucket", *key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None, timeout: float = 60.0
) -> Answer:
    """One HTTP request, redirects not followed; 4xx/5xx are answers, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


@dataclass
class Console:
    url: str  # http://host:port/
    token: str | None
    process: subprocess.Popen[str]
    first_line: str

    def get(self, path: str, **kwargs: Any) -> Answer:
        return fetch(self.url + path.lstrip("/"), **kwargs)

    def act(self, path: str, body: Any = None) -> Answer:
        """A POST as the page's buttons send it."""
        return fetch(
            self.url + path.lstrip("/"),
            method="POST",
            headers={"X-Dockline-Console": "1", "Content-Type": "application/json"},
            body=body if body is not None else {},
        )


def start_console(
    data_dir: Path, config: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Start `dockline console --port 0 ARGS`; return the process and its first stdout line
    (or, if it exits first, what it printed)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dockline", "--data-dir", str(data_dir), "--config", str(config), "console", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data_dir.parent,
        env=env or cli_env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return process, lines.get(timeout=READY_SECONDS)
    except queue.Empty:
        process.kill()
        raise AssertionError("dockline console printed no address in time") from None


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Callable[..., Console]]:
    """Start consoles on ``--port 0`` (the kernel picks a free port; the address line says
    which) and stop them, with SIGTERM, after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(data_dir: Path, config: Path, *args: str, env: dict[str, str] | None = None) -> Console:
        process, line = start_console(data_dir, config, "--port", "0", *args, env=env)
        started.append(process)
        found = ADDRESS.search(line)
        assert found, f"no address in {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        url = found[1].replace("0.0.0.0", "127.0.0.1")
        return Console(url, found[2], process, line)

    yield start
    for process in started:
        stop(process)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 whose answer can be switched (500, then 204)."""

    url: str = ""
    answer: int = 500
    bodies: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if hook.answer < 300:
                hook.bodies.append(json.loads(body))
            self.send_response(hook.answer)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield hook
    server.shutdown()
    server.server_close()


@dataclass
class World:
    data_dir: Path
    config: Path

    def cli(self, *args: str) -> str:
        return cli_ok(self.data_dir, self.config, *args)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.cli("status", "--json"))
        return result


@pytest.fixture
def world(tmp_path: Path, receiver: Receiver) -> World:
    """A data dir after one `run --once`: three good files (one NDJSON of 3 records), a CSV
    whose key and reason hold markup (failed, dead-lettered), and a webhook that answered 500
    (its deliveries retrying)."""
    data_dir = tmp_path / "data"
    config = tmp_path / "dockline.toml"
    config.write_text(
        "[pipeline]\ncsv_schema = { qty = \"int\" }\n"
        "[local]\nsettle_seconds = 0\n"
        f'[[local.subscriptions]]\ntype = "webhook"\nurl = "{receiver.url}"\n'
    )
    cli_ok(data_dir, config, "put", str(_write(tmp_path / "a.json", '{"id": "order-1", "total": 19.99}')))
    cli_ok(data_dir, config, "put", str(_write(tmp_path / "b.json", '{"id": "order-2", "total": 5}')))
    lines = "".join(f'{{"id": "r{n}", "v": {n}}}\n' for n in range(3))
    cli_ok(data_dir, config, "put", str(_write(tmp_path / "c.ndjson", lines)))
    drop(data_dir, HOSTILE_KEY, HOSTILE_CSV)
    cli_ok(data_dir, config, "run", "--once", "--quiet")
    return World(data_dir, config)


HOSTILE_KEY = "incoming/<script>x</script>.csv"
HOSTILE_VALUE = "<img src=x onerror=window.__xss=1>"
HOSTILE_CSV = f"id,qty\nline-1,{HOSTILE_VALUE}\n"
FIXED_CSV = "id,qty\nline-1,7\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
