"""The console's API and access rules, through a real `dockline console` process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.console.conftest import (
    FIXED_CSV,
    HOSTILE_KEY,
    HOSTILE_VALUE,
    Console,
    Receiver,
    World,
    cli,
    cli_env,
    drop,
    fetch,
)

# What `status --json` and the console both report, minus what moves with the clock.
STEADY = ("files", "backlog", "deliveries", "dead_letters", "last_error", "healthy", "problems")


def _steady(report: dict[str, object]) -> dict[str, object]:
    shown = {name: report[name] for name in STEADY}
    backlog = dict(shown["backlog"])  # type: ignore[call-overload]
    backlog.pop("oldest_age_seconds")
    return {**shown, "backlog": backlog}


def test_status_api_has_the_numbers_of_status_json(world: World, console: Callable[..., Console]) -> None:
    # GIVEN a data dir with processed, failed and dead-lettered files, and a file waiting
    drop(world.data_dir, "incoming/waiting.json", '{"id": "later"}')
    served = console(world.data_dir, world.config)
    # WHEN the console and `dockline status --json` look at it
    api = served.get("/api/status")
    cli_report = world.status()
    # THEN they say the same
    assert api.status == 200
    assert _steady(api.json()) == _steady(cli_report)
    assert api.json()["files"]["processed"] == 3
    assert api.json()["backlog"]["files"] == 1


def test_lists_carry_user_data_as_json_never_as_html(world: World, console: Callable[..., Console]) -> None:
    # GIVEN a failed file whose key and reason hold markup
    served = console(world.data_dir, world.config)
    # WHEN the page and the lists are fetched
    page = served.get("/")
    failed = served.get("/api/failed")
    letters = served.get("/api/dead-letters")
    # THEN the page itself holds no user data, the lists are JSON with the strings exact,
    # and every answer forbids inline scripts
    assert page.status == 200
    assert b"<script>x" not in page.body and b"onerror" not in page.body
    assert failed.headers["content-type"] == "application/json"
    (row,) = failed.json()["rows"]
    assert row["key"] == HOSTILE_KEY
    assert HOSTILE_VALUE in row["error"]
    assert letters.json()["rows"][0]["key"] == HOSTILE_KEY
    for answer in (page, failed, letters):
        assert "script-src" not in answer.headers["content-security-policy"]  # default-src 'self' applies
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_browse_filters_items_by_pk_and_key_prefix(world: World, console: Callable[..., Console]) -> None:
    served = console(world.data_dir, world.config)
    by_pk = served.get("/api/browse/items?pk=order-")
    by_key = served.get("/api/browse/items?key=incoming/c.")
    failed_files = served.get("/api/browse/files?status=failed")
    bad = served.get("/api/browse/files?status=bogus")
    assert sorted(r["pk"] for r in by_pk.json()["rows"]) == ["order-1", "order-2"]
    assert sorted(r["pk"] for r in by_key.json()["rows"]) == ["r0", "r1", "r2"]
    # exact numbers: the payload is the stored canonical JSON text, 19.99 not 19.989999...
    assert json.loads(next(r for r in by_pk.json()["rows"] if r["pk"] == "order-1")["payload"])["total"] == 19.99
    assert '"total":19.99' in next(r for r in by_pk.json()["rows"] if r["pk"] == "order-1")["payload"]
    assert [r["key"] for r in failed_files.json()["rows"]] == [HOSTILE_KEY]
    assert bad.status == 400 and "bogus" in bad.json()["error"]


def test_redrive_removes_the_letter_once_the_file_is_fixed(world: World, console: Callable[..., Console]) -> None:
    # GIVEN a dead letter whose file was then fixed
    served = console(world.data_dir, world.config)
    (letter,) = served.get("/api/dead-letters").json()["rows"]
    assert served.get("/api/status").json()["dead_letters"] == 1
    drop(world.data_dir, HOSTILE_KEY, FIXED_CSV)
    # WHEN the console redrives it
    done = served.act("/api/dead-letters/redrive", {"id": letter["id"]})
    # THEN the file is processed and the letter gone, as `dockline dlq list` also says
    assert done.status == 200, done.body
    assert done.json()["redriven"][0]["status"] == "processed"
    assert served.get("/api/dead-letters").json()["rows"] == []
    assert served.get("/api/status").json()["dead_letters"] == 0  # not an answer shared from before
    assert world.cli("dlq", "list", "--json").strip() == "[]"
    assert world.status()["files"]["processed"] == 4


def test_redeliver_sends_to_a_real_receiver(world: World, receiver: Receiver, console: Callable[..., Console]) -> None:
    # GIVEN deliveries the receiver refused (500), and a receiver that now accepts
    served = console(world.data_dir, world.config)
    notes = served.get("/api/deliveries").json()["rows"]
    undelivered = [n for n in notes if any(d["status"] != "delivered" for d in n["deliveries"])]
    assert undelivered, notes
    receiver.answer = 204
    # WHEN one notification is redelivered
    done = served.act(f"/api/notifications/{undelivered[0]['id']}/redeliver")
    # THEN the receiver has it and its delivery is delivered
    assert done.status == 200, done.body
    assert done.json()["delivered"] == 1
    assert [b["id"] for b in receiver.bodies] == [undelivered[0]["id"]]
    again = {n["id"]: n for n in served.get("/api/deliveries").json()["rows"]}
    assert [d["status"] for d in again[undelivered[0]["id"]]["deliveries"]] == ["delivered"]


def test_an_action_without_the_console_header_is_refused(world: World, console: Callable[..., Console]) -> None:
    # GIVEN a page elsewhere that makes the browser POST to the console (a plain form can)
    served = console(world.data_dir, world.config)
    drop(world.data_dir, HOSTILE_KEY, FIXED_CSV)
    (letter,) = served.get("/api/dead-letters").json()["rows"]
    forged = fetch(served.url + "api/dead-letters/redrive", method="POST", body={"id": letter["id"]})
    # THEN it is refused and nothing happened
    assert forged.status == 403
    assert len(served.get("/api/dead-letters").json()["rows"]) == 1


def test_loopback_answers_only_loopback_host_names(world: World, console: Callable[..., Console]) -> None:
    # GIVEN a console on 127.0.0.1 (no token needed)
    served = console(world.data_dir, world.config)
    # WHEN a page of another site reaches it by a name of its own (DNS rebinding)
    rebound = served.get("/api/status", headers={"Host": "evil.example:8686"})
    # THEN it is refused; the machine's own names work without a token
    assert rebound.status == 403
    assert served.token is None
    assert served.get("/api/status", headers={"Host": "localhost:8686"}).status == 200
    assert served.get("/api/status").status == 200


def test_a_network_address_needs_the_printed_token(world: World, console: Callable[..., Console]) -> None:
    # GIVEN a console on every address, with no token given: it makes one and prints it
    served = console(world.data_dir, world.config, "--host", "0.0.0.0")
    assert served.token and len(served.token) >= 24
    assert "shown only now" in served.first_line
    # THEN the page and the API refuse requests without it, or with another
    assert served.get("/").status == 401
    assert served.get("/api/status").status == 401
    assert served.get("/api/status", headers={"Authorization": "Bearer wrong"}).status == 401
    assert served.act("/api/notifications/redeliver-failed").status == 401
    # and accept it as a bearer token, or as the cookie that ?token= sets
    assert served.get("/api/status", headers={"Authorization": f"Bearer {served.token}"}).status == 200
    login = served.get(f"/?token={served.token}")
    assert login.status == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    pair = cookie.split(";")[0]
    # and the reload never leaves the console, whatever the path looks like
    escape = fetch(served.url.rstrip("/") + f"//evil.example/x?token={served.token}")
    assert escape.headers["location"] == "/evil.example/x"
    assert served.get("/", headers={"Cookie": pair}).status == 200
    assert served.get("/api/status", headers={"Cookie": pair}).status == 200


def test_the_token_can_come_from_the_environment(world: World, console: Callable[..., Console]) -> None:
    served = console(
        world.data_dir, world.config, "--host", "0.0.0.0", env=cli_env(DOCKLINE_CONSOLE_TOKEN="s3cret-token")
    )
    assert served.token == "s3cret-token"
    assert "shown only now" not in served.first_line
    assert served.get("/api/status").status == 401
    assert served.get("/api/status", headers={"Authorization": "Bearer s3cret-token"}).status == 200


def test_a_port_in_use_is_one_line(world: World) -> None:
    # GIVEN a port something else listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        # WHEN the console is asked to serve on it
        done = cli(world.data_dir, world.config, "console", "--port", str(port), timeout=60)
    # THEN one line says so
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"dockline: error: port {port} on 127.0.0.1 is in use: stop what serves it, or pass --port N"
    )


def test_without_starlette_the_console_names_the_install(tmp_path: Path, world: World) -> None:
    # GIVEN an environment where starlette is not installed (a package that says so shadows it)
    shadow = tmp_path / "shadow" / "starlette"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'starlette'\", name='starlette')\n"
    )
    env = cli_env(PYTHONPATH=f"{shadow.parent}:{cli_env().get('PYTHONPATH', '')}")
    # WHEN the console is started
    done = subprocess.run(
        [sys.executable, "-m", "dockline", "--data-dir", str(world.data_dir), "console", "--port", "0"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
    )
    # THEN one line names what to install, and the rest of dockline still works
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "dockline: error: the console needs starlette and uvicorn (starlette is missing):"
        " pip install 'dockline[console]'"
    )
    status = subprocess.run(
        [sys.executable, "-m", "dockline", "--data-dir", str(world.data_dir), "status", "--json"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
    )
    assert status.returncode == 0, status.stderr


def test_no_data_yet_is_a_message_not_a_crash(tmp_path: Path, console: Callable[..., Console]) -> None:
    config = tmp_path / "dockline.toml"
    config.write_text("[local]\nsettle_seconds = 0\n")
    served = console(tmp_path / "empty", config)
    answer = served.get("/api/status")
    assert answer.status == 503
    assert "no dockline data" in answer.json()["error"]
    assert served.get("/").status == 200


def test_metrics_are_the_run_metrics_of_the_data_dir(world: World, console: Callable[..., Console]) -> None:
    # GIVEN the world's data dir (3 processed files with 5 records, 1 failed and dead-lettered)
    from prometheus_client.parser import text_string_to_metric_families

    served = console(world.data_dir, world.config)
    # WHEN Prometheus scrapes the console
    answer = served.get("/metrics")
    # THEN it serves the registry `run --metrics-port` serves, with the numbers of `status --json`
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.body.decode())
        for s in family.samples
    }
    report = world.status()
    assert samples[("dockline_files_total", (("status", "processed"),))] == report["files"]["processed"] == 3
    assert samples[("dockline_files_total", (("status", "failed"),))] == report["files"]["failed"] == 1
    assert samples[("dockline_records_total", ())] == 5
    assert samples[("dockline_dead_letters_total", ())] == report["dead_letters"] == 1
    assert samples[("dockline_backlog_files", ())] == report["backlog"]["files"] == 0


def test_metrics_before_any_data_is_503_and_one_line(tmp_path: Path, console: Callable[..., Console]) -> None:
    config = tmp_path / "dockline.toml"
    config.write_text("")
    served = console(tmp_path / "nothing-yet", config)
    answer = served.get("/metrics")
    assert answer.status == 503
    assert answer.body.decode().count("\n") == 1 and "no dockline data" in answer.body.decode()
