"""The local topic's subscriptions through the engine: delivered after commit, at least once,
by the delivery worker (tests/local/test_deliveries_durable.py has its schedule and faults)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dockline.config import LocalSettings, Settings, WebhookSubscription
from dockline.local.engine import LocalEngine


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail:
                    self.send_response(503)
                else:
                    receiver.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def engine_for(tmp_path: Path, url: str, **local: Any) -> LocalEngine:
    settings = replace(
        Settings(),
        local=LocalSettings(
            settle_seconds=0, subscriptions=(WebhookSubscription(url=url, timeout_seconds=2),), **local
        ),
    )
    return LocalEngine(tmp_path / "data", settings)


def put(engine: LocalEngine, name: str, text: str) -> None:
    path = engine.bucket_dir / "incoming" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_each_notification_reaches_the_webhook_once(tmp_path: Path, receiver: Receiver) -> None:
    # GIVEN a webhook subscription and three files
    engine = engine_for(tmp_path, receiver.url)
    for i in range(3):
        put(engine, f"o{i}.json", f'{{"id": "o{i}"}}')
    # WHEN the engine runs once, and again
    engine.run_once()
    engine.run_once()
    # THEN the receiver got each notification exactly once, as JSON
    assert sorted(b["attributes"]["pk"] for b in receiver.bodies) == ["o0", "o1", "o2"]
    assert {b["subject"] for b in receiver.bodies} == {"S3 Event Processed"}
    deliveries = [d for m in engine.topic.messages() for d in m["deliveries"]]
    assert [d["status"] for d in deliveries] == ["delivered"] * 3


def test_a_delivery_left_pending_by_a_crash_is_sent_on_the_next_start(tmp_path: Path, receiver: Receiver) -> None:
    # GIVEN a notification recorded with its delivery pending, as a crash right after the commit leaves it
    engine = engine_for(tmp_path, receiver.url)
    put(engine, "a.json", '{"id": "a"}')
    engine.process(engine.scan().ready, workers=1)  # processed, and the process dies before sending
    assert receiver.bodies == []
    assert [d["status"] for m in engine.topic.messages() for d in m["deliveries"]] == ["pending"]
    # WHEN a new engine starts on the same data dir
    again = engine_for(tmp_path, receiver.url)
    again.run_once()
    # THEN the pending delivery is sent, once
    assert [b["attributes"]["pk"] for b in receiver.bodies] == ["a"]
    assert [d["status"] for m in again.topic.messages() for d in m["deliveries"]] == ["delivered"]


def test_a_webhook_that_is_down_does_not_fail_the_file(tmp_path: Path, receiver: Receiver) -> None:
    # GIVEN a webhook answering 503
    receiver.fail = True
    engine = engine_for(tmp_path, receiver.url)
    put(engine, "a.json", '{"id": "a"}')
    # WHEN the file is processed
    summary = engine.run_once()
    # THEN the file is processed, and its delivery waits for a later try (issue 8: 503 is transient)
    assert [o.status.value for o in summary.outcomes] == ["processed"]
    [delivery] = [d for m in engine.topic.messages() for d in m["deliveries"]]
    assert delivery["status"] == "retrying" and "503" in delivery["error"]
    assert delivery["attempts"] == 1 and delivery["next_attempt_at"] >= delivery["updated_at"]
