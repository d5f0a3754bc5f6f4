"""Issue 8, Why 12 and 13: text is text.

Keys, ids, reasons and payloads come from whoever can write to the bucket. Every table
and line the CLI prints shows them literally: markup is not interpreted (``[/b]`` used to
crash the tables, ``[red]x[/red]`` turned red), and control characters (ESC sequences,
CR, LF, C1 controls, bidi overrides) are shown as visible escapes instead of reaching the
terminal. ``--json`` stays exact JSON. Errors are one line on stderr, never wrapped.

Everything runs through the real CLI in a subprocess: with pipes, with FORCE_COLOR (rich
then renders styles, so its markup path is really taken), and on a pseudo-terminal.
"""

from __future__ import annotations

import errno
import fcntl
import http.server
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Keys and pks with markup, emoji codes and control characters. A file name with control
# characters may be processed, or refused by the scan and listed under a printable form
# of its name; either way it must reach the screen escaped, so the tests hold for both.
MARKUP_KEY = "incoming/[red]x[/red] :smile:.json"
CONTROL_KEY = "incoming/c\x1b]0;pwned\x07\x1b[38;2;1;2;3mE\r\n\u202eR.json"
FAILING_KEY = "incoming/bad[/b]\x1b]0;pwned\x07.json"
CONTROL_PK_KEY = "incoming/control-pk.json"
BROKEN_MARKUP_KEY = "incoming/worse[/b] [red]z[/red].json"  # a key any scan takes
MARKUP_PK = "m[/b]"
CONTROL_PK = "p\x1b[38;2;1;2;3mE\r\n\u202e\x9bQ"
NOTE = "[/b] [red]y[/red] :smile: \x1b]0;pwned\x07 \u202e \x9b31m"

# How they must look on screen: every control character as its escape.
SHOWN_CONTROL_KEY = re.compile(r"incoming/c\\x1b\]0;pwned\\x07\\x1b\[38;2;1;2;3mE(\\r\\n|\\x0d\\x0a)\\u202eR\.json")
SHOWN_FAILING_KEY = r"incoming/bad[/b]\x1b]0;pwned\x07.json"
SHOWN_CONTROL_PK = r"p\x1b[38;2;1;2;3mE\r\n\u202e\x9bQ"

# Raw sequences that must never reach the terminal. The colour is true-colour so that it
# cannot be mistaken for one rich emits itself under FORCE_COLOR.
RAW = ("\x1b]0;pwned", "\x1b[38;2;1;2;3m", "\x07", "\r", "\u202e", "\x9b")
SGR = re.compile(r"\x1b\[[0-9;]*m")  # the styles rich itself writes on a colour terminal

TABLES = (
    ("ledger", "list"),
    ("files", "list"),
    ("notifications", "list"),
    ("dlq", "list"),
)


@dataclass
class World:
    data_dir: Path
    run: subprocess.CompletedProcess[str]


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("DOCKLINE_") and k not in ("NO_COLOR", "FORCE_COLOR")
    }
    env["COLUMNS"] = "400"  # wide enough that no cell folds mid-escape
    env.update(extra)
    return env


def _argv(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dockline", "--data-dir", str(data_dir), *args]


def cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(data_dir, *args),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=data_dir.parent,
        env=_env(**env),
        check=False,
    )


def _drop(data_dir: Path, key: str, text: str) -> None:
    path = data_dir.joinpath("bucket", *key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One data dir holding hostile keys, pks and payloads, settled by a real `run --once`."""
    root = tmp_path_factory.mktemp("text")
    (root / "dockline.toml").write_text("[local]\nsettle_seconds = 0\n")
    data_dir = root / "data"
    data_dir.mkdir()
    _drop(data_dir, MARKUP_KEY, json.dumps({"id": MARKUP_PK, "note": NOTE}))
    _drop(data_dir, CONTROL_PK_KEY, json.dumps({"id": CONTROL_PK, "note": NOTE}))
    _drop(data_dir, CONTROL_KEY, json.dumps({"id": "from-control-key"}))
    _drop(data_dir, FAILING_KEY, '{"broken": [/b] }')  # not JSON: failed, with a dead letter
    _drop(data_dir, BROKEN_MARKUP_KEY, '{"broken": [/b] }')
    run = cli(data_dir, "run", "--once")
    assert run.returncode == 0, run.stderr
    return World(data_dir=data_dir, run=run)


def assert_no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    assert "Traceback" not in done.stderr and "MarkupError" not in done.stderr


def assert_shown_literally(out: str, *shown: str) -> None:
    """No raw control sequence from the data is in ``out``; each ``shown`` text is."""
    for raw in RAW:
        assert raw not in out, f"raw {raw!r} reached the terminal"
    for text in shown:
        assert text in out, f"{text!r} not shown literally in:\n{out}"


# -- the tables ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", TABLES, ids=" ".join)
def test_why12_tables_print_markup_literally(world: World, command: tuple[str, ...]) -> None:
    # WHEN a table is listed whose keys, pks and payloads hold markup and emoji codes
    done = cli(world.data_dir, *command)

    # THEN it prints, without a traceback, the characters as they are
    assert_no_traceback(done)
    expected = {
        "ledger": ["[red]x[/red] :smile:", MARKUP_PK, "[/b] [red]y[/red] :smile:"],
        "files": ["[red]x[/red] :smile:", MARKUP_PK, "bad[/b]"],
        "notifications": ["[red]x[/red] :smile:", "bad[/b]"],
        "dlq": ["bad[/b]"],
    }[command[0]]
    assert_shown_literally(done.stdout, *expected)
    assert "\N{SMILING FACE WITH SMILING EYES}" not in done.stdout  # no emoji substitution


@pytest.mark.parametrize("command", TABLES, ids=" ".join)
def test_why12_tables_show_control_characters_as_escapes(world: World, command: tuple[str, ...]) -> None:
    # WHEN a table is listed whose keys, pks and payloads hold ESC, BEL, CR, LF, C1 and U+202E
    done = cli(world.data_dir, *command)

    # THEN none reaches the terminal raw: each is shown as its escape
    assert_no_traceback(done)
    expected = {
        "ledger": [SHOWN_CONTROL_PK, r"\u202e \x9b31m"],
        "files": [SHOWN_CONTROL_PK, SHOWN_FAILING_KEY],
        "notifications": [SHOWN_FAILING_KEY],
        "dlq": [SHOWN_FAILING_KEY],
    }[command[0]]
    assert_shown_literally(done.stdout, *expected)


def test_why12_files_list_shows_a_key_with_crlf_on_one_line(world: World) -> None:
    # WHEN the files are listed
    done = cli(world.data_dir, "files", "list")

    # THEN the key holding ESC, CR and LF is shown whole on one line of the table
    assert_no_traceback(done)
    assert [line for line in done.stdout.splitlines() if SHOWN_CONTROL_KEY.search(line)], done.stdout


@pytest.mark.parametrize("command", TABLES, ids=" ".join)
def test_why12_tables_with_forced_colour_take_rich_markup_path(world: World, command: tuple[str, ...]) -> None:
    # GIVEN rich believes it writes to a colour terminal (it renders styles)
    done = cli(world.data_dir, *command, FORCE_COLOR="1", TERM="xterm-256color")

    # THEN it did style the output (so the styled path was taken) ...
    assert_no_traceback(done)
    assert SGR.search(done.stdout), "FORCE_COLOR gave no styles; the test would prove nothing"
    # ... and apart from its own styles nothing raw from the data reached the terminal
    assert_shown_literally(done.stdout, SHOWN_FAILING_KEY if command[0] != "ledger" else SHOWN_CONTROL_PK)
    plain = SGR.sub("", done.stdout)
    assert "\x1b" not in plain
    assert "bad[/b]" in plain or "[red]x[/red]" in plain


def _pty_run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60.0) -> tuple[int, str]:
    """Run ``argv`` with stdin/stdout/stderr on a new pseudo-terminal; return (exit code, output).

    Output post-processing (LF -> CRLF) is switched off, so a CR in the output is one the
    program wrote.
    """
    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                proc.kill()
                pytest.fail(f"{argv} did not finish within {timeout}s on the pty")
            try:
                data = os.read(master, 65536)
            except OSError as exc:  # Linux: EIO once the last writer has closed the pty
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
        return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("command", [*TABLES, ("ledger", "get", CONTROL_PK)], ids=lambda c: " ".join(c[:2]))
def test_why12_tables_on_a_real_terminal(world: World, command: tuple[str, ...]) -> None:
    # GIVEN a real (pseudo-)terminal: rich detects it and styles its output
    env = _env(TERM="xterm-256color")
    env.pop("COLUMNS")  # the terminal's own width (400) is used

    # WHEN a table is shown on it
    code, out = _pty_run(_argv(world.data_dir, *command), world.data_dir.parent, env)

    # THEN it worked, and the data's markup and control characters are shown, not acted on
    assert code == 0, out
    assert "Traceback" not in out
    assert_shown_literally(out, SHOWN_FAILING_KEY if command[0] in ("files", "dlq") else r"\x1b")
    assert "\x1b" not in SGR.sub("", out)


# -- single items and lines -----------------------------------------------------------------
def test_why12_ledger_get_shows_pk_and_payload_literally(world: World) -> None:
    # WHEN one item with control characters in its pk and payload is shown
    done = cli(world.data_dir, "ledger", "get", CONTROL_PK)

    # THEN each field is one literal line; the payload stays indented JSON
    assert_no_traceback(done)
    assert_shown_literally(done.stdout, f"pk: {SHOWN_CONTROL_PK}", r'"note": "[/b] [red]y[/red] :smile:')
    assert done.stdout.startswith("pk: ") and "\npayload: {\n" in done.stdout


def test_why12_dlq_show_prints_the_key_literally(world: World) -> None:
    # GIVEN the dead letter of the file whose key holds markup and an OSC sequence
    letters = json.loads(cli(world.data_dir, "dlq", "list", "--json").stdout)
    [letter] = [x for x in letters if "bad[/b]" in x["key"]]

    # WHEN it is shown
    show = cli(world.data_dir, "dlq", "show", letter["id"])

    # THEN each field is one literal line, control characters escaped
    assert_no_traceback(show)
    assert_shown_literally(show.stdout, f"key: {SHOWN_FAILING_KEY}")


def test_why12_dlq_redrive_dry_run_prints_the_key_literally(world: World) -> None:
    # GIVEN the dead letter of a file whose key holds markup
    letters = json.loads(cli(world.data_dir, "dlq", "list", "--json").stdout)
    [letter] = [x for x in letters if x["key"] == BROKEN_MARKUP_KEY]

    # WHEN its redrive is planned
    plan = cli(world.data_dir, "dlq", "redrive", letter["id"], "--dry-run")

    # THEN the plan names the key as written
    assert_no_traceback(plan)
    assert_shown_literally(plan.stdout, f"{BROKEN_MARKUP_KEY} ({letter['id']})")


def test_why12_run_echo_line_prints_keys_literally(world: World) -> None:
    # THEN the "[status] subject: message" line of each notification, printed by `run`,
    # carries the keys as they are
    out = world.run.stdout
    assert_shown_literally(out, "[red]x[/red] :smile:.json", SHOWN_FAILING_KEY)
    assert "[processed] " in out and "[failed] " in out
    assert all(line.startswith("[") for line in out.splitlines()), out  # no line was split by an LF


def test_why12_json_output_stays_exact_json(world: World) -> None:
    # WHEN the ledger is listed as JSON
    done = cli(world.data_dir, "ledger", "list", "--json")

    # THEN it is JSON whose strings hold exactly the original characters
    assert_no_traceback(done)
    items = {item["pk"]: item for item in json.loads(done.stdout)}
    assert items[CONTROL_PK]["payload"]["note"] == NOTE
    assert items[MARKUP_PK]["key"] == MARKUP_KEY
    assert r"\\x1b" not in done.stdout  # only JSON's own escaping (\u001b), none of ours


# -- errors -----------------------------------------------------------------------------------
def test_why13_an_error_with_a_long_path_stays_one_line_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    # GIVEN a config path far longer than 80 columns, with spaces where rich would wrap
    config = tmp_path / ("a long folder name " * 12).strip() / "dockline.toml"

    # WHEN a command fails on it, stderr being a pipe
    # (COLUMNS unset: rich's own width for a non-terminal, 80, applies; `dlq list --aws` reads settings first)
    done = cli(tmp_path / "data", "--config", str(config), "dlq", "list", "--aws", COLUMNS="")

    # THEN the error is one line, not folded at 80 columns
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("dockline: error: ") and str(config) in done.stderr


def test_why13_control_characters_in_an_error_are_escaped(tmp_path: Path) -> None:
    # GIVEN a config path holding LF, ESC sequences and a bidi override
    config = tmp_path / "a\nb\x1b]0;pwned\x07\x1b[38;2;1;2;3mc\u202e.toml"

    # WHEN a command fails on it
    # (COLUMNS unset: rich's own width for a non-terminal, 80, applies; `dlq list --aws` reads settings first)
    done = cli(tmp_path / "data", "--config", str(config), "dlq", "list", "--aws", COLUMNS="")

    # THEN the error is one line (DocklineError turns the LF into a space), with the
    # other characters shown as escapes
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert_shown_literally(done.stderr, r"a b\x1b]0;pwned\x07\x1b[38;2;1;2;3mc\u202e.toml")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://[::1/hook", "is not a valid URL"),  # was a ValueError traceback
        ("http://[zz::1]/hook", "IPv6"),
        ("http://127.0.0.1:8080/my hook", "has a space"),  # passed, then failed every delivery
    ],
)
def test_why13_a_webhook_url_that_cannot_work_is_one_line_at_load(tmp_path: Path, url: str, words: str) -> None:
    # GIVEN a webhook whose URL can never be delivered to
    config = tmp_path / "dockline.toml"
    config.write_text(f'[[local.subscriptions]]\ntype = "webhook"\nurl = "{url}"\n')

    # WHEN any command loads the settings
    done = cli(tmp_path / "data", "--config", str(config), "run", "--once")

    # THEN it fails with one line naming the subscription, not a traceback
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("dockline: error: [local.subscriptions #1] webhook url "), done.stderr
    assert words in done.stderr
    assert not (tmp_path / "data").exists()  # and it created nothing


def test_why12_demo_prints_its_data_dir_literally(tmp_path: Path) -> None:
    # GIVEN a demo folder whose name holds markup and an OSC sequence
    target = tmp_path / "demo[/b]\x1b]0;pwned\x07"
    target.parent.mkdir()  # the "/" of "[/b]" makes "demo[" a folder of its own

    # WHEN the demo runs into it, with rich styling its output
    done = cli(tmp_path / "data", "demo", "--data-dir-out", str(target), FORCE_COLOR="1", TERM="xterm-256color")

    # THEN it finishes and names the folder as written, control characters escaped
    assert_no_traceback(done)
    assert SGR.search(done.stdout)
    assert_shown_literally(SGR.sub("", done.stdout), r"demo[/b]\x1b]0;pwned\x07")
    assert "What happened to each file" in done.stdout


@pytest.fixture
def hostile_receiver() -> Iterator[str]:
    """A webhook receiver that answers 500 with an OSC sequence in its HTTP reason phrase."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(500, "Oops \x1b]0;pwned\x07\x1b[38;2;1;2;3mred")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_why12_what_a_receiver_answers_reaches_stderr_escaped(tmp_path: Path, hostile_receiver: str) -> None:
    # GIVEN a webhook whose receiver answers with control sequences in its reason phrase
    config = tmp_path / "dockline.toml"
    config.write_text(
        f'[local]\nsettle_seconds = 0\n[[local.subscriptions]]\ntype = "webhook"\nurl = "{hostile_receiver}"\n'
    )
    data_dir = tmp_path / "data"
    _drop(data_dir, "incoming/a.json", '{"id": "a"}')

    # WHEN a run delivers (and fails to deliver) its notification
    done = cli(data_dir, "run", "--once", COLUMNS="")

    # THEN the file is processed, and nothing the receiver said reaches the terminal raw
    assert done.returncode == 0, done.stderr
    assert_shown_literally(done.stdout + done.stderr)
    for line in done.stderr.splitlines():
        if "pwned" in line:  # where the answer is reported, it is one escaped line
            assert line.startswith("dockline: ") and r"\x1b]0;pwned\x07" in line, line
