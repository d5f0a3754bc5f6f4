"""issue 11 item 5: start-up. The run path and --help load none of the libraries that only
some commands need (AWS, CDK, the console's web server, JSON Schema, Rich's tables and
progress bars, pydantic). A rule on what is imported, not a timing test: each of these costs
tens of milliseconds, and a new top-level import anywhere on the path breaks this test at once.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

# Loaded by a command, never by start-up: boto3/botocore (AWS engine, synth/deploy), the CDK
# and jsii, the console (starlette, uvicorn), jsonschema (only a route with a schema), Rich
# itself (~30 ms: only a table, a bar on a terminal, a styled line; help is typer's plain
# text and a plain line is written as rich would, see render.LazyConsole), pydantic
# (typer >= 0.29 coerces every option through it: ~65 ms; pyproject pins typer below it).
# An entry forbids that module and everything below it ("rich.table", not all of rich).
FORBIDDEN = (
    "boto3",
    "botocore",
    "aws_cdk",
    "constructs",
    "jsii",
    "aws_lambda_powertools",
    "starlette",
    "uvicorn",
    "jsonschema",
    "pydantic",
    "rich",
    "dockline.aws",
    "dockline.infra",
    "dockline.console",
    # the watcher's inotify (only `run` without --once), and the network and mail libraries of
    # subscriptions (only when a delivery is sent): ~8 ms together
    "watchdog",
    "http.client",
    "smtplib",
    "ssl",
    "email",
)

# The CLI's own entry point, in a fresh interpreter with stdout and stderr not a terminal (as
# in cron, CI or a pipe), then the modules it loaded.
PROBE = """
import json, sys
sys.argv = ["dockline", *json.loads(sys.argv[1])]
from dockline.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded_by(argv: list[str], cwd: Path) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["code"] in (0, None), out
    return [m for m in result["modules"] if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--help"], id="help"),
        pytest.param(["--data-dir", "{data}", "run", "--once"], id="run-once-empty"),
        pytest.param(["--data-dir", "{data}", "run", "--once", "--quiet", "--workers", "2"], id="run-once-quiet"),
    ],
)
def test_why5_startup_imports_no_library_that_only_some_commands_need(argv: list[str], tmp_path: Path) -> None:
    # GIVEN an empty data dir and no settings file
    data = tmp_path / "data"
    # WHEN dockline starts in a fresh interpreter and runs the command to its end
    loaded = loaded_by([a.replace("{data}", str(data)) for a in argv], cwd=tmp_path)
    # THEN none of the heavy libraries was imported on the way
    assert loaded == []
    if "run" in argv:
        assert (data / "dockline.db").exists()  # the run really ran


def test_why5_the_probe_sees_a_forbidden_import_when_one_happens(tmp_path: Path) -> None:
    # GIVEN the probe above: WHEN a command that needs a table runs (ledger list prints one)
    # THEN the probe reports rich.table, so an empty answer above is not a blind spot
    data = tmp_path / "data"
    loaded_by(["--data-dir", str(data), "run", "--once"], cwd=tmp_path)
    assert "rich.table" in loaded_by(["--data-dir", str(data), "ledger", "list"], cwd=tmp_path)


def test_why5_a_terminal_still_gets_its_progress_bar(tmp_path: Path) -> None:
    # GIVEN three files to process and stderr on a terminal (a pseudo-terminal here)
    incoming = tmp_path / "data" / "bucket" / "incoming"
    incoming.mkdir(parents=True)
    for n in range(3):
        (incoming / f"o{n}.json").write_text(f'{{"id": "o{n}"}}')
    (tmp_path / "dockline.toml").write_text("[local]\nsettle_seconds = 0\n")
    argv = ["--data-dir", str(tmp_path / "data"), "--config", str(tmp_path / "dockline.toml"), "run", "--once", "-q"]
    # WHEN run --once --quiet runs there
    pid, fd = pty.fork()
    if pid == 0:  # the child: the probe, its output on the terminal
        os.execv(sys.executable, [sys.executable, "-c", PROBE, json.dumps(argv)])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    # THEN the bar was drawn (rich.progress was loaded for it) and the three files settled
    # (what the bar shows is tests/local/test_progress.py's; three tiny files may end before
    # its first refresh)
    assert '"rich.progress"' in text
    assert "\x1b[2Kprocessing " in text  # the bar's line, drawn on the terminal
    assert "3 processed" in text
