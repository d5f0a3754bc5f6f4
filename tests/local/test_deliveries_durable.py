"""Issue 8, Why 2 and 3: deliveries are durable and off the processing path.

Real receivers on 127.0.0.1 fail, hang and recover on cue; the schedule is driven by
an injected clock (no real hours). Each receiver drops duplicates by the delivery key
(Idempotency-Key / Message-ID), as the README asks receivers to do, and the tests
count what it kept: every alert must arrive, and exactly once by key.
"""

from __future__ import annotations

import http.server
import json
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from dockline.config import EmailSubscription, LocalSettings, Settings, WebhookSubscription
from dockline.local.db import Database
from dockline.local.deliveries import Backoff, DeliveryWorker
from dockline.local.engine import LocalEngine
from dockline.local.subscriptions import WebhookSubscription as Webhook
from dockline.local.topic import LocalTopic
from dockline.models import Notification
from tests.local.conftest import cli_command, cli_env, drop, run_cli, write_config
from tests.local.test_subscriptions import Inbox, smtp_server


# -- a clock the tests move --------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)

    def to(self, stamp: str) -> None:
        with self._lock:
            self.now = max(self.now, datetime.fromisoformat(stamp))


# -- a webhook receiver that fails, hangs and recovers on cue --------------------------------
@dataclass
class Hook:
    """Answers ``status`` (or hangs when ``hang`` is set); keeps the bodies it accepted by key."""

    port: int = 0
    status: int = 204
    retry_after: str | None = None
    hang: bool = False
    requests: int = 0
    accepted: Counter[str] = field(default_factory=Counter)  # Idempotency-Key -> 2xx answers
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)
    server: http.server.ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Hook:
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook.lock:
                    hook.requests += 1
                    hang, status = hook.hang, hook.status
                if hang:
                    hook.released.wait(30)  # never answers: the client times out
                    self.close_connection = True
                    return
                key = self.headers["Idempotency-Key"]
                if 200 <= status < 300:
                    with hook.lock:
                        hook.accepted[key] += 1
                        hook.bodies[key] = json.loads(body)
                self.send_response(status)
                if hook.retry_after is not None:
                    self.send_header("Retry-After", hook.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self.server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.released.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def keys(self) -> set[str]:
        with self.lock:
            return set(self.accepted)


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook().start()
    yield receiver
    receiver.stop()


# -- engines and workers -------------------------------------------------------------------
def engine_for(
    data_dir: Path,
    clock: Clock,
    *subscriptions: WebhookSubscription | EmailSubscription,
    **local: Any,
) -> LocalEngine:
    settings = Settings(local=LocalSettings(settle_seconds=0.0, subscriptions=subscriptions, **local))
    return LocalEngine(data_dir, settings, clock=clock)


def put_files(data_dir: Path, count: int, prefix: str = "f") -> list[str]:
    """Files appear whole (written under a dot name, then renamed), so a watcher never
    reads one half-written (that is issue 8, Why 9, not this file's subject)."""
    keys = [f"incoming/{prefix}{i:03d}.json" for i in range(count)]
    for i, key in enumerate(keys):
        path = drop(data_dir, f"incoming/.{prefix}{i:03d}.tmp", {"id": f"{prefix}-{i}"})
        path.rename(data_dir / "bucket" / key)
    return keys


def deliveries(engine_or_db: LocalEngine | Database) -> list[dict[str, Any]]:
    db = engine_or_db.db if isinstance(engine_or_db, LocalEngine) else engine_or_db
    return [dict(row) for row in db.query("SELECT * FROM deliveries ORDER BY notification_id")]


def advance_past_schedule(clock: Clock, engine_or_db: LocalEngine | Database) -> None:
    """Move the clock to the latest next_attempt_at: every retrying delivery is due."""
    due = [d["next_attempt_at"] for d in deliveries(engine_or_db) if d["status"] == "retrying"]
    assert due, "nothing is waiting for a retry"
    clock.to(max(due))


def assert_waiting(engine: LocalEngine, reason: str) -> None:
    """Nothing delivered, nothing given up: tried ones retry later with ``reason``, the rest are pending."""
    rows = deliveries(engine)
    assert {d["status"] for d in rows} <= {"retrying", "pending"}
    tried = [d for d in rows if d["status"] == "retrying"]
    assert tried and all(reason in d["error"] for d in tried)


def notification_keys(engine: LocalEngine) -> set[str]:
    from dockline.local.subscriptions import delivery_key

    return {delivery_key(published_at=m["published_at"], notification_id=m["id"]) for m in engine.topic.messages()}


def hanging(
    tmp_path: Path, hook: Hook, *, timeout: float, grace: float, files: int
) -> tuple[LocalEngine, Clock, WebhookSubscription]:
    """An engine whose webhook hangs, with ``files`` files waiting."""
    clock = Clock()
    hook.hang = True
    subscription = WebhookSubscription(url=hook.url, timeout_seconds=timeout)
    engine = engine_for(tmp_path / "data", clock, subscription, stop_grace_seconds=grace)
    put_files(engine.data_dir, files)
    return engine, clock, subscription


def timed_run(engine: LocalEngine) -> tuple[Any, float]:
    """``run_once``'s summary and its wall time in seconds."""
    started = time.monotonic()
    summary = engine.run_once()
    return summary, time.monotonic() - started


def assert_each_arrived_once(hook: Hook, engine: LocalEngine, count: int) -> None:
    """Every notification reached the receiver, exactly once by key, and says delivered."""
    assert hook.keys == notification_keys(engine)
    assert len(hook.keys) == count
    assert set(hook.accepted.values()) == {1}
    assert {d["status"] for d in deliveries(engine)} == {"delivered"}


def test_why2_http_500_then_204_loses_no_alert(tmp_path: Path, hook: Hook) -> None:
    # GIVEN a webhook answering 500 while 20 files are processed
    clock = Clock()
    hook.status = 500
    engine = engine_for(tmp_path / "data", clock, WebhookSubscription(url=hook.url, timeout_seconds=2))
    put_files(engine.data_dir, 20)
    first = engine.run_once()
    assert len(first.outcomes) == 20
    # (the first 500 ends the run's send-what-is-due: the rest stay pending for the next start)
    assert_waiting(engine, "HTTP 500")
    # WHEN the receiver recovers and a later run comes after the schedule
    hook.status = 204
    advance_past_schedule(clock, engine)
    engine_for(tmp_path / "data", clock, WebhookSubscription(url=hook.url, timeout_seconds=2)).run_once()
    # THEN 0 of 20 alerts are lost, each kept once by key, and every delivery says so
    assert_each_arrived_once(hook, engine, 20)


def test_why2_why3_a_hanging_receiver_slows_no_file_and_loses_no_alert(tmp_path: Path, hook: Hook) -> None:
    # GIVEN a webhook that accepts connections and never answers (1 s timeout), six files
    engine, clock, subscription = hanging(tmp_path, hook, timeout=1, grace=2, files=6)
    # WHEN six files are processed
    summary, wall = timed_run(engine)
    # THEN processing never waited on the receiver (before: 3 x timeout per file, 18 s here),
    # and the run ends within the stop grace plus one timeout
    assert len(summary.outcomes) == 6
    assert summary.seconds < 5, f"processing took {summary.seconds:.1f}s with a hanging receiver"
    assert wall < 2 + 1 + 5, f"run_once took {wall:.1f}s"
    assert hook.requests >= 1
    # WHEN the receiver recovers and the schedule comes round
    hook.hang = False
    hook.released.set()
    clock.advance(600)
    engine_for(tmp_path / "data", clock, subscription).run_once()
    # THEN 0 of 6 alerts are lost
    assert_each_arrived_once(hook, engine, 6)


def test_why3_the_delivery_grace_at_stop_is_bounded(tmp_path: Path, hook: Hook) -> None:
    # GIVEN a receiver that hangs longer than the stop grace (20 s timeout, 0.5 s grace)
    engine, _clock, _sub = hanging(tmp_path, hook, timeout=20, grace=0.5, files=2)
    # WHEN a run ends while a delivery is in flight
    _summary, wall = timed_run(engine)
    # THEN the run does not wait for the receiver beyond the grace; the delivery in flight stays
    # 'sending' under this live process (the next start after it exits sends it again), the other pending
    assert wall < 0.5 + 3, f"run_once took {wall:.1f}s"
    assert sorted(d["status"] for d in deliveries(engine)) == ["pending", "sending"]
    # ... and once the receiver lets go, the abandoned send is still recorded, not lost
    hook.released.set()
    wait_for(lambda: "sending" not in {d["status"] for d in deliveries(engine)}, "the abandoned send to end")
    assert sorted(d["status"] for d in deliveries(engine)) == ["pending", "retrying"]


def test_why2_smtp_450_then_250_loses_no_mail(tmp_path: Path) -> None:
    # GIVEN a mail server answering 450 (mailbox busy) while 7 files are processed
    clock = Clock()
    inbox = Inbox(refuse={"ops@example.com": "450 4.2.1 Mailbox busy"})
    with smtp_server(inbox) as port:
        subscription = EmailSubscription(host="127.0.0.1", port=port, to=("ops@example.com",), timeout_seconds=2)
        engine = engine_for(tmp_path / "data", clock, subscription)
        put_files(engine.data_dir, 7)
        engine.run_once()
        assert_waiting(engine, "450 4.2.1 Mailbox busy")
        # WHEN the mailbox takes mail again and the schedule comes round
        inbox.refuse.clear()
        advance_past_schedule(clock, engine)
        engine_for(tmp_path / "data", clock, subscription).run_once()
    # THEN 0 of 7 mails are lost, one per Message-ID
    ids = Counter(message_from_bytes(e.content, policy=policy.default)["Message-ID"] for e in inbox.messages)
    assert len(ids) == 7 and set(ids.values()) == {1}
    assert {d["status"] for d in deliveries(engine)} == {"delivered"}


def test_why2_a_receiver_restarted_within_2s_loses_no_alert(tmp_path: Path, hook: Hook) -> None:
    # GIVEN a watcher and a receiver taking alerts
    clock = Clock()
    engine = engine_for(tmp_path / "data", clock, WebhookSubscription(url=hook.url, timeout_seconds=1))
    stop = threading.Event()
    watcher = threading.Thread(target=engine.watch, kwargs={"stop": stop}, daemon=True)
    watcher.start()
    try:
        put_files(engine.data_dir, 5, prefix="before")
        wait_for(lambda: len(hook.keys) == 5, "the first alerts")
        # WHEN the receiver goes down, alerts are published, and it comes back 1.5 s later
        hook.stop()
        put_files(engine.data_dir, 5, prefix="during")
        wait_for(lambda: len(engine.topic.messages()) == 10, "the alerts while it is down")
        time.sleep(1.5)
        hook.start()  # same port
        put_files(engine.data_dir, 5, prefix="after")
        wait_for(lambda: len(engine.topic.messages()) == 15, "the alerts after")
        clock.advance(600)  # the retry schedule comes round
        engine.deliveries.wake()
        wait_for(lambda: len(hook.keys) == 15, "every alert")
    finally:
        stop.set()
        watcher.join(timeout=20)
    # THEN every alert arrived, exactly once by key
    assert hook.keys == notification_keys(engine)
    assert set(hook.accepted.values()) == {1}


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- classification and the schedule --------------------------------------------------------
@dataclass
class Topic:
    db: Database
    topic: LocalTopic
    clock: Clock

    def publish(self, count: int) -> None:
        for i in range(count):
            self.topic.publish(Notification(f"subject {i}", f"message {i}", {"status": "processed", "key": f"k{i}"}))

    def worker(self, url: str, *, rand: float = 1.0, horizon: float = 86_400.0) -> DeliveryWorker:
        """A new worker, as a new process would build it."""
        sub = Webhook(WebhookSubscription(url=url, timeout_seconds=1))
        return DeliveryWorker(
            self.db.path, [sub], horizon_seconds=horizon, clock=self.clock, backoff=Backoff(rand=lambda: rand)
        )


@pytest.fixture
def topic(tmp_path: Path, hook: Hook) -> Iterator[Topic]:
    db = Database(tmp_path / "dockline.db")
    clock = Clock()
    sub = Webhook(WebhookSubscription(url=hook.url))
    yield Topic(db, LocalTopic(db, subscriptions=[sub], clock=clock), clock)
    db.close()


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (400, "failed"),
        (404, "failed"),
        (410, "failed"),
        (408, "retrying"),
        (429, "retrying"),
        (500, "retrying"),
        (503, "retrying"),
    ],
)
def test_why2_http_4xx_is_permanent_and_408_429_5xx_transient(
    topic: Topic, hook: Hook, status: int, state: str
) -> None:
    # GIVEN a receiver answering one status
    hook.status = status
    topic.publish(1)
    # WHEN the delivery is attempted
    [sent] = topic.worker(hook.url).deliver_due()
    # THEN it is failed at once, or scheduled, with the status as its reason
    assert (sent.status, sent.attempts) == (state, 1)
    assert f"HTTP {status}" in (sent.error or "")
    assert (sent.next_attempt_at is None) == (state == "failed")


def test_why2_retry_after_is_honoured_and_bounded(topic: Topic, hook: Hook) -> None:
    # GIVEN a receiver asking for 120 s of quiet, and no jitter
    hook.status, hook.retry_after = 429, "120"
    topic.publish(1)
    worker = topic.worker(hook.url, rand=0.0)
    # WHEN attempted
    [sent] = worker.deliver_due()
    # THEN the next attempt is 120 s later, and nothing is due before
    assert sent.next_attempt_at == iso_after(topic.clock, 120)
    topic.clock.advance(119)
    assert worker.deliver_due() == []
    topic.clock.advance(1)
    # WHEN it asks for a day (and then by an HTTP date)
    hook.retry_after = "86400"
    [again] = worker.deliver_due()
    # THEN the wait is bounded to an hour
    assert again.next_attempt_at == iso_after(topic.clock, 3600)
    topic.clock.advance(3600)
    hook.retry_after = "Wed, 21 Oct 2099 07:28:00 GMT"
    [third] = worker.deliver_due()
    assert third.next_attempt_at == iso_after(topic.clock, 3600)


def iso_after(clock: Clock, seconds: float) -> str:
    from dockline.pipeline import iso

    return iso(clock() + timedelta(seconds=seconds))


def test_why2_retries_back_off_across_runs_until_the_horizon_then_fail(topic: Topic, hook: Hook) -> None:
    # GIVEN a receiver down for good, a one-hour horizon, and the longest backoff draw
    hook.status = 500
    topic.publish(1)
    published = topic.clock()
    waits: list[float] = []
    states: list[str] = []
    # WHEN each attempt is made by a new worker (a new run) when it is due
    for _ in range(50):
        [sent] = topic.worker(hook.url, horizon=3600).deliver_due()
        states.append(sent.status)
        if sent.next_attempt_at is None:
            break
        before = topic.clock()
        topic.clock.to(sent.next_attempt_at)
        waits.append((topic.clock() - before).total_seconds())
    # THEN the waits doubled from 10 s up to the 10 min cap, the last one cut at the horizon,
    assert waits[:7] == [10, 20, 40, 80, 160, 320, 600]
    assert all(w <= 600 for w in waits)
    assert topic.clock() - published == timedelta(seconds=3600)
    # ... and it failed for good at the horizon with the last reason, not before
    assert states[-1] == "failed" and set(states[:-1]) == {"retrying"}
    [row] = deliveries(topic.db)
    assert row["status"] == "failed" and "HTTP 500" in row["error"]
    assert row["attempts"] == len(states) == hook.requests


def test_why2_full_jitter_spreads_the_waits(topic: Topic, hook: Hook) -> None:
    # GIVEN half the longest draw
    hook.status = 500
    topic.publish(3)
    # WHEN attempted
    sent = topic.worker(hook.url, rand=0.5).deliver_due()
    # THEN each waits half of the first backoff step
    assert {s.next_attempt_at for s in sent} == {iso_after(topic.clock, 5)}


# -- several workers, crashes, old data dirs ---------------------------------------------------
def test_why2_two_workers_never_send_the_same_delivery(topic: Topic, hook: Hook) -> None:
    # GIVEN 60 due deliveries and two workers (two owners, two connections), as two processes
    topic.publish(60)
    workers = [topic.worker(hook.url), topic.worker(hook.url)]
    results: list[list[Any]] = [[], []]
    # WHEN both send at once
    threads = [threading.Thread(target=lambda i=i: results[i].extend(workers[i].deliver_due())) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # THEN every delivery was sent by exactly one of them, once
    assert hook.requests == 60
    assert len(hook.keys) == 60 and set(hook.accepted.values()) == {1}
    assert sorted(s.notification_id for r in results for s in r) == list(range(1, 61))


def test_why2_a_dead_owners_sending_delivery_is_due_at_once(topic: Topic, hook: Hook) -> None:
    # GIVEN deliveries left 'sending' by a process that is gone, one by a live one of this
    # process, and one by a process on another machine
    topic.publish(3)
    gone = subprocess.Popen(["true"])
    gone.wait()
    live = topic.worker(hook.url)
    owners = [f"{socket.gethostname()}:{gone.pid}:dead", live.owner, "elsewhere:1:x"]
    with topic.db.transaction() as conn:
        for nid, owner in enumerate(owners, start=1):
            conn.execute(
                "UPDATE deliveries SET status = 'sending', owner = ?, updated_at = ? WHERE notification_id = ?",
                (owner, iso_after(topic.clock, 0), nid),
            )
    # WHEN a new worker starts, with no time passed (the clock is the test's)
    sent = topic.worker(hook.url).deliver_due()
    # THEN only the dead owner's delivery is sent again, without waiting for any staleness
    assert [s.notification_id for s in sent] == [1]
    assert [d["status"] for d in deliveries(topic.db)] == ["delivered", "sending", "sending"]
    # ... and the other machine's is taken back only once it is stale (10 min)
    topic.clock.advance(601)
    assert [s.notification_id for s in topic.worker(hook.url).deliver_due()] == [3]


def test_why2_a_data_dir_from_before_keeps_working(tmp_path: Path, hook: Hook) -> None:
    # GIVEN a schema-2 file written by the previous dockline: deliveries without a schedule,
    # one pending and one left 'sending' by a crash long ago
    path = tmp_path / "dockline.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE notifications (id INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT NOT NULL,"
            " message TEXT NOT NULL, attributes TEXT NOT NULL, published_at TEXT NOT NULL);"
            "CREATE TABLE deliveries (notification_id INTEGER NOT NULL, subscription TEXT NOT NULL,"
            " status TEXT NOT NULL, error TEXT, attempts INTEGER NOT NULL, updated_at TEXT NOT NULL,"
            " PRIMARY KEY (notification_id, subscription));"
            "PRAGMA user_version = 2;"
        )
        sub = Webhook(WebhookSubscription(url=hook.url))
        for nid, status in ((1, "pending"), (2, "sending")):
            conn.execute("INSERT INTO notifications VALUES (?, 's', 'm', '{}', '2026-01-01T00:00:00.000Z')", (nid,))
            conn.execute(
                "INSERT INTO deliveries VALUES (?, ?, ?, NULL, 0, '2026-01-01T00:00:00.000Z')",
                (nid, sub.name, status),
            )
    conn.close()
    # WHEN this dockline opens it and its worker runs
    db = Database(path)
    sent = DeliveryWorker(path, [sub]).deliver_due()
    # THEN both are delivered (the crashed one's owner-less row is long stale), and the file
    # stays schema 2, readable by the previous dockline
    assert sorted(s.status for s in sent) == ["delivered", "delivered"]
    assert len(hook.keys) == 2
    assert db.query("PRAGMA user_version")[0][0] == 2
    assert {"next_attempt_at", "owner", "scheduled_from"} <= {
        r["name"] for r in db.query("PRAGMA table_info(deliveries)")
    }
    db.close()


def test_why2_kill_9_while_sending_is_sent_again_at_the_next_run(tmp_path: Path, hook: Hook) -> None:
    # GIVEN `run --once` sending to a receiver that hangs (30 s timeout)
    hook.hang = True
    data_dir = tmp_path / "data"
    drop(data_dir, "incoming/a.json", {"id": "a"})
    config = webhook_config(tmp_path, hook, "timeout_seconds = 30\n")
    proc = subprocess.Popen(
        cli_command(data_dir, "run", "--once", "--quiet", config=config),
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: hook.requests >= 1 and sending(data_dir) == 1, "the delivery to be sending")
    finally:
        # WHEN it is killed with SIGKILL mid-send
        proc.kill()
        proc.wait(timeout=10)
    assert sending(data_dir) == 1
    # ... and the receiver recovers and the next run starts
    hook.hang = False
    hook.released.set()
    started = time.monotonic()
    done = run_cli(data_dir, "run", "--once", "--quiet", config=config)
    # THEN the interrupted delivery is sent at once (not after a 10 min staleness), once by key
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20
    assert len(hook.keys) == 1 and set(hook.accepted.values()) == {1}
    [row] = json.loads(run_cli(data_dir, "notifications", "list", "--json").stdout)
    assert [(d["status"], d["attempts"]) for d in row["deliveries"]] == [("delivered", 2)]


def sending(data_dir: Path) -> int:
    with sqlite3.connect(f"file:{data_dir / 'dockline.db'}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # not created yet


# -- the commands ----------------------------------------------------------------------------
def webhook_config(tmp_path: Path, hook: Hook, extra: str = "") -> Path:
    return write_config(
        tmp_path / "dockline.toml", f'[[local.subscriptions]]\ntype = "webhook"\nurl = "{hook.url}"\n{extra}'
    )


def cli_run_once(tmp_path: Path, hook: Hook, *, status: int, files: int) -> tuple[Path, Path]:
    """`dockline run --once` on ``files`` files while the receiver answers ``status``."""
    hook.status = status
    data_dir = tmp_path / "data"
    put_files(data_dir, files)
    config = webhook_config(tmp_path, hook)
    assert run_cli(data_dir, "run", "--once", "--quiet", config=config).returncode == 0
    return data_dir, config


def test_why2_notifications_redeliver_sends_failed_ones_now(tmp_path: Path, hook: Hook) -> None:
    # GIVEN two files whose deliveries failed for good (404: the URL was wrong for a while)
    data_dir, config = cli_run_once(tmp_path, hook, status=404, files=2)
    listed = run_cli(data_dir, "notifications", "list", config=config)
    assert listed.stdout.count("failed (1 attempt)") == 2, listed.stdout
    # WHEN the receiver is fixed and the failed ones are redelivered
    hook.status = 204
    done = run_cli(data_dir, "notifications", "redeliver", "--failed", "--json", config=config)
    # THEN both are sent now, and the list says so
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["due"], result["delivered"], result["failed"]) == (2, 2, 0)
    assert len(hook.keys) == 2
    rows = json.loads(run_cli(data_dir, "notifications", "list", "--json", config=config).stdout)
    assert [[(d["status"], d["attempts"]) for d in r["deliveries"]] for r in rows] == [[("delivered", 2)]] * 2
    # ... one notification by id (a one-line summary), and an unknown id is a one-line error, exit 2
    again = run_cli(data_dir, "notifications", "redeliver", "1", config=config)
    assert again.returncode == 0
    assert again.stdout.strip() == "1 made due, 1 sent: 1 delivered, 0 retrying, 0 failed"
    assert hook.accepted.total() == 3  # the copy is the receiver's to drop by its key
    unknown = run_cli(data_dir, "notifications", "redeliver", "99", config=config)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "dockline: error: no notification with id 99 (see `dockline notifications list`)"
    neither = run_cli(data_dir, "notifications", "redeliver", config=config)
    assert neither.returncode == 2 and neither.stderr.count("\n") == 1
    bare = write_config(tmp_path / "bare.toml")
    unconfigured = run_cli(data_dir, "notifications", "redeliver", "--failed", config=bare)
    assert unconfigured.returncode == 2 and "no [[local.subscriptions]]" in unconfigured.stderr


def test_why2_notifications_list_shows_retrying_at(tmp_path: Path, hook: Hook) -> None:
    # GIVEN a delivery waiting for a retry
    data_dir, config = cli_run_once(tmp_path, hook, status=503, files=1)
    # WHEN listed
    [row] = json.loads(run_cli(data_dir, "notifications", "list", "--json", config=config).stdout)
    text = run_cli(data_dir, "notifications", "list", config=config).stdout
    # THEN the table shows when it is tried next, and how often it was
    [delivery] = row["deliveries"]
    assert delivery["status"] == "retrying"
    assert f"retrying at {delivery['next_attempt_at']} (1 attempt)" in text, text


@pytest.mark.slow
def test_why3_a_watcher_stops_promptly_after_sigterm_with_a_hanging_receiver(tmp_path: Path, hook: Hook) -> None:
    # GIVEN a watcher whose webhook never answers (the default 5 s timeout)
    import signal

    hook.hang = True
    data_dir = tmp_path / "data"
    (data_dir / "bucket" / "incoming").mkdir(parents=True)
    config = webhook_config(tmp_path, hook)
    proc = subprocess.Popen(
        cli_command(data_dir, "run", "--quiet", config=config),
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for((data_dir / "dockline.db").exists, "the watcher to start")
        # WHEN six files arrive
        started = time.monotonic()
        put_files(data_dir, 6)
        # THEN all six are processed without waiting on the receiver (before: 93 s)
        wait_for(lambda: processed(data_dir) == 6, "six files processed", seconds=30)
        took = time.monotonic() - started
        assert took < 10, f"six files took {took:.1f}s"
        # WHEN it gets SIGTERM
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        stop_took = time.monotonic() - stopping
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # THEN it stops within the delivery grace (10 s) plus a little (before: 69 s)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert stop_took < 10 + 3, f"stopping took {stop_took:.1f}s"
    # ... and the undelivered ones wait for the next start
    states = Counter(d["status"] for d in deliveries_of(data_dir))
    assert states["delivered"] == 0 and sum(states.values()) == 6


def processed(data_dir: Path) -> int:
    with sqlite3.connect(f"file:{data_dir / 'dockline.db'}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM files WHERE status = 'processed'").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def deliveries_of(data_dir: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{data_dir / 'dockline.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM deliveries")]
    finally:
        conn.close()


def test_run_once_sends_every_delivery_due_at_its_end(tmp_path: Path, hook: Hook) -> None:
    # GIVEN a healthy receiver, and runs that each settle one file
    clock = Clock()
    engine = engine_for(tmp_path / "data", clock, WebhookSubscription(url=hook.url))
    try:
        for n in range(25):
            drop(engine, f"incoming/f{n:02d}.json", {"id": f"f{n:02d}"})
            # WHEN a run ends
            engine.run_once()
            # THEN its delivery went out before it returned: a worker thread that looked for
            # work just before the run's last commit must look again once draining began
            states = [d["status"] for m in engine.topic.messages() for d in m["deliveries"]]
            assert states == ["delivered"] * (n + 1), (n, states)
    finally:
        engine.db.close()
