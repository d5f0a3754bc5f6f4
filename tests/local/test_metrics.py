"""Prometheus metrics (issue 10, What to build 4): `dockline run --metrics-port` serves
/metrics over real HTTP; the numbers match what was processed, survive a restart, count
what another process did, and only ever go up (redrive, prune, a dead letter sent twice).
Real subprocesses, a real webhook receiver, real SQLite files."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dockline.local.engine import LocalEngine
from dockline.local.metrics import registry
from dockline.local.prune import prune_notifications
from dockline.models import Status
from tests.local.conftest import (
    SlowWebhook,
    cli_command,
    cli_env,
    drop,
    letters,
    run_cli,
    write_config,
)
from tests.local.test_deliveries_durable import Hook, hook  # noqa: F401 - the fixture
from tests.local.test_prune import old_history  # noqa: F401 - the fixture

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (sample name, sorted labels) -> value."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return parse(response.read().decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


class Watcher:
    """A `dockline run --metrics-port 0` subprocess and the URL it said it serves."""

    def __init__(self, data_dir: Path, config: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            cli_command(data_dir, "run", "--quiet", "--metrics-port", "0", *extra, config=config),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=data_dir.parent,
            env=cli_env(),
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        match = re.fullmatch(r"metrics at (http://127\.0\.0\.1:\d+/metrics)\n", line)
        assert match, line
        self.url = match.group(1)

    def scrape_until(self, done: Callable[[Samples], bool], timeout: float = 60) -> Samples:
        deadline = time.monotonic() + timeout
        while True:
            samples = scrape(self.url)
            if done(samples) or time.monotonic() > deadline:
                return samples
            time.sleep(0.1)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=30)
        return err


@pytest.fixture
def watchers() -> Iterator[Callable[..., Watcher]]:
    started: list[Watcher] = []

    def start(data_dir: Path, config: Path, *extra: str) -> Watcher:
        watcher = Watcher(data_dir, config, *extra)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        if watcher.proc.poll() is None:
            watcher.stop()


def _settled(samples: Samples) -> float:
    return sum(v for (name, _), v in samples.items() if name == "dockline_files_total")


@pytest.mark.slow
def test_item4_run_metrics_port_serves_what_was_processed_and_survives_a_restart(
    tmp_path: Path, slow_webhook: Callable[[float], SlowWebhook], watchers: Callable[..., Watcher]
) -> None:
    # GIVEN a watcher serving metrics, with a webhook subscription
    receiver = slow_webhook(0.0)
    data_dir = tmp_path / "data"
    config = write_config(
        tmp_path / "dockline.toml", f'[[local.subscriptions]]\ntype = "webhook"\nurl = "{receiver.url}"\n'
    )
    watcher = watchers(data_dir, config)
    # WHEN two single-record files, a 5-record file and a broken file arrive
    sizes = [
        drop(data_dir, "incoming/a.json", {"id": "a", "v": 1}).stat().st_size,
        drop(data_dir, "incoming/b.json", {"id": "b", "v": 2}).stat().st_size,
        drop(data_dir, "incoming/c.jsonl", "".join(f'{{"id": "c{i}"}}\n' for i in range(5))).stat().st_size,
        drop(data_dir, "incoming/bad.json", "{not json").stat().st_size,
    ]

    def all_done(s: Samples) -> bool:
        return _settled(s) == 4 and value(s, "dockline_deliveries_total", outcome="delivered") == 4

    samples = watcher.scrape_until(all_done)

    # THEN the counters match what was processed
    assert value(samples, "dockline_files_total", status="processed") == 3
    assert value(samples, "dockline_files_total", status="failed") == 1
    assert value(samples, "dockline_files_total", status="conflict") == 0
    assert value(samples, "dockline_records_total") == 7
    assert value(samples, "dockline_bytes_total") == sum(sizes)
    assert value(samples, "dockline_deliveries_total", outcome="delivered") == 4 == len(receiver.bodies)
    assert value(samples, "dockline_deliveries_total", outcome="failed") == 0
    assert value(samples, "dockline_dead_letters_total") == 1
    # AND the histogram holds one observation per file, in cumulative buckets
    assert value(samples, "dockline_file_duration_seconds_count") == 4
    assert value(samples, "dockline_file_duration_seconds_bucket", le="+Inf") == 4
    assert value(samples, "dockline_file_duration_seconds_bucket", le="1800.0") == 4
    # (times are kept to the millisecond: four tiny files may each settle within one)
    assert 0 <= value(samples, "dockline_file_duration_seconds_sum") < 60
    # AND the gauges: nothing waits, nothing in flight
    assert value(samples, "dockline_backlog_files") == 0
    assert value(samples, "dockline_backlog_oldest_age_seconds") == 0
    assert value(samples, "dockline_files_in_flight") == 0

    # WHEN the watcher restarts
    watcher.stop()
    again = watchers(data_dir, config)
    # THEN the counters carry on from where they were
    restarted = again.scrape_until(lambda s: True)
    for name in ("dockline_files_total", "dockline_records_total", "dockline_bytes_total"):
        for key in (k for k in samples if k[0] == name):
            assert restarted[key] == samples[key], key
    assert value(restarted, "dockline_file_duration_seconds_count") == 4


@pytest.mark.slow
def test_item4_counters_include_what_another_process_did(tmp_path: Path, watchers: Callable[..., Watcher]) -> None:
    # GIVEN a watcher serving metrics that watches another prefix, so it processes nothing here
    data_dir = tmp_path / "data"
    elsewhere = write_config(tmp_path / "elsewhere.toml", '[pipeline]\nprefix = "elsewhere/"\n')
    watcher = watchers(data_dir, elsewhere)
    assert value(scrape(watcher.url), "dockline_files_total", status="processed") == 0
    # WHEN a separate `run --once` processes two files under incoming/
    drop(data_dir, "incoming/one.json", {"id": "one"})
    drop(data_dir, "incoming/two.jsonl", '{"id": "two-1"}\n{"id": "two-2"}\n')
    done = run_cli(data_dir, "run", "--once", "--quiet", config=write_config(tmp_path / "dockline.toml"))
    assert done.returncode == 0, done.stderr
    # THEN the watcher's /metrics counts what the other process did, at once
    after = scrape(watcher.url)
    assert value(after, "dockline_files_total", status="processed") == 2
    assert value(after, "dockline_records_total") == 3
    assert value(after, "dockline_file_duration_seconds_count") == 2


def test_item4_backlog_gauges_count_waiting_files(engine: LocalEngine) -> None:
    # GIVEN two matching files nobody processed yet, and one that does not match
    drop(engine, "incoming/a.json", {"id": "a"})
    drop(engine, "incoming/b.json", {"id": "b"})
    drop(engine, "other/c.json", {"id": "c"})
    metrics = registry(engine.data_dir, engine.settings)
    # WHEN scraped THEN both wait, the oldest for a moment
    waiting = parse(generate_latest(metrics).decode())
    assert value(waiting, "dockline_backlog_files") == 2
    assert 0 <= value(waiting, "dockline_backlog_oldest_age_seconds") < 60
    # AND once processed, nothing waits
    engine.run_once()
    settled = parse(generate_latest(metrics).decode())
    assert value(settled, "dockline_backlog_files") == 0
    assert value(settled, "dockline_backlog_oldest_age_seconds") == 0


def test_item4_metrics_port_in_use_is_one_line(tmp_path: Path) -> None:
    # GIVEN a port someone else listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # WHEN dockline run is asked to serve metrics there
        done = run_cli(tmp_path / "data", "run", "--once", "--metrics-port", str(port))
    # THEN it says so in one line and exits 2 (a usage error)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--metrics-port {port}" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


# -- counters only go up, whatever changes the tables ----------------------------------------
def test_item4_counters_are_monotonic_across_redrive_prune_and_a_letter_sent_twice(engine: LocalEngine) -> None:
    # GIVEN a broken file that failed, with its dead letter, and a good one
    drop(engine, "incoming/bad.json", "{not json")
    drop(engine, "incoming/good.json", {"id": "good"})
    engine.run_once()
    metrics = registry(engine.data_dir, engine.settings)
    first = parse(generate_latest(metrics).decode())
    assert value(first, "dockline_files_total", status="failed") == 1
    assert value(first, "dockline_dead_letters_total") == 1
    # WHEN its letter is sent again (an outbox retried after a crash): the same letter
    [letter] = letters(engine, "incoming/bad.json")
    engine.dead_letters.send(letter)
    resent = parse(generate_latest(metrics).decode())
    assert value(resent, "dockline_dead_letters_total") == 1
    # AND it is redriven (the failed row goes back to pending: the table's failed count drops)
    engine.redrive(engine.plan_redrive(None))
    # AND old notifications are pruned
    prune_notifications(engine.db, before="9999-01-01T00:00:00.000Z")
    after = parse(generate_latest(metrics).decode())
    # THEN no counter went down; the redrive's new failure is a second settlement
    for key, before in first.items():
        if key[0].endswith(("_total", "_bucket", "_count", "_sum")):
            assert after[key] >= before, key
    assert value(after, "dockline_files_total", status="failed") == 2
    # one version, one letter: the redrive's failure replaced the letter it redrove
    assert value(after, "dockline_dead_letters_total") == 1
    # AND the deliveries prune deleted still count (none here: no subscription), as do the files
    assert value(after, "dockline_records_total") == value(first, "dockline_records_total")
    assert len(letters(engine, "incoming/bad.json")) == 1
    assert value(after, "dockline_files_total", status="processed") == 1
    assert engine.db.query("SELECT count(*) AS n FROM notifications")[0]["n"] == 0  # prune did delete


def test_item4_counters_count_a_reprocess_as_a_second_settlement_and_never_go_down(engine: LocalEngine) -> None:
    # GIVEN a processed file of 3 records
    drop(engine, "incoming/r.jsonl", "".join(f'{{"id": "r{i}"}}\n' for i in range(3)))
    engine.run_once()
    metrics = registry(engine.data_dir, engine.settings)
    first = parse(generate_latest(metrics).decode())
    assert value(first, "dockline_files_total", status="processed") == 1
    # WHEN it is reprocessed (its row leaves the final state, then settles again)
    from dockline.local.reprocess import execute, plan_local
    from dockline.reprocess import Selection

    execute(engine, plan_local(engine, Selection(everything=True)))
    after = parse(generate_latest(metrics).decode())
    # THEN the first settlement still counts, beside the second: nothing went down
    for key, before in first.items():
        if key[0].endswith(("_total", "_bucket", "_count", "_sum")):
            assert after[key] >= before, key
    assert value(after, "dockline_files_total", status="processed") == 2
    assert value(after, "dockline_records_total") == 6
    assert value(after, "dockline_file_duration_seconds_count") == 2


def test_item4_delivery_counters_survive_prune_and_redeliver(old_history: tuple[LocalEngine, Hook]) -> None:  # noqa: F811
    # GIVEN 40-day-old history: 3 deliveries delivered, 1 failed for good, 1 still retrying
    engine, receiver = old_history
    metrics = registry(engine.data_dir, engine.settings)
    before = parse(generate_latest(metrics).decode())
    assert value(before, "dockline_deliveries_total", outcome="delivered") == 3
    assert value(before, "dockline_deliveries_total", outcome="failed") == 1
    # WHEN the failed one is redelivered (it goes back to pending) and delivered
    receiver.status = 204
    assert engine.deliveries.redeliver(failed=True) == 2
    engine.run_once()  # its delivery worker sends what is due
    redelivered = parse(generate_latest(metrics).decode())
    # AND everything settled is pruned
    prune_notifications(engine.db, before="9999-01-01T00:00:00.000Z")
    pruned = parse(generate_latest(metrics).decode())
    # THEN the failure stays counted, the new deliveries are added, and prune takes nothing away
    assert value(redelivered, "dockline_deliveries_total", outcome="failed") == 1
    assert value(redelivered, "dockline_deliveries_total", outcome="delivered") == 5  # c and d too
    assert engine.db.query("SELECT count(*) AS n FROM deliveries")[0]["n"] == 0
    assert value(pruned, "dockline_deliveries_total", outcome="delivered") == 5
    assert value(pruned, "dockline_deliveries_total", outcome="failed") == 1


def test_item4_an_old_data_dir_counts_what_it_holds(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN a data dir written before counters existed (their tables, triggers and columns removed)
    engine = make_engine()
    drop(engine, "incoming/a.json", {"id": "a"})
    drop(engine, "incoming/b.jsonl", '{"id": "b1"}\n{"id": "b2"}\n')
    drop(engine, "incoming/bad.json", "{")
    assert len(engine.run_once().outcomes) == 3
    engine.db.close()
    import sqlite3

    conn = sqlite3.connect(engine.data_dir / "dockline.db")
    for trigger in [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]:
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.executescript(
        "DROP TABLE retired; DROP TABLE retired_files; ALTER TABLE files DROP COLUMN started_at;"
        " ALTER TABLE files DROP COLUMN records_done; ALTER TABLE files DROP COLUMN bytes_done;"
    )
    conn.close()
    # WHEN a reader scrapes it before any run of this version opened it
    stale = parse(generate_latest(registry(engine.data_dir, engine.settings)).decode())
    # THEN it counts the settled files and letters it holds, untimed
    assert value(stale, "dockline_files_total", status="processed") == 2
    assert value(stale, "dockline_files_total", status="failed") == 1
    assert value(stale, "dockline_records_total") == 3
    assert value(stale, "dockline_dead_letters_total") == 1
    assert value(stale, "dockline_file_duration_seconds_count") == 0
    # AND once a run of this version opened it, counting carries on from there
    reopened = make_engine()
    drop(reopened, "incoming/c.json", {"id": "c"})
    assert [o.status for o in reopened.run_once().outcomes] == [Status.PROCESSED]
    samples = parse(generate_latest(registry(reopened.data_dir, reopened.settings)).decode())
    assert value(samples, "dockline_files_total", status="processed") == 3
    assert value(samples, "dockline_records_total") == 4
    assert value(samples, "dockline_file_duration_seconds_count") == 1  # only files timed by this version


def test_item4_metric_names_follow_prometheus_conventions(engine: LocalEngine) -> None:
    text = generate_latest(registry(engine.data_dir, engine.settings)).decode()
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families == {
        "dockline_files": "counter",
        "dockline_records": "counter",
        "dockline_bytes": "counter",
        "dockline_deliveries": "counter",
        "dockline_dead_letters": "counter",
        "dockline_file_duration_seconds": "histogram",
        "dockline_files_in_flight": "gauge",
        "dockline_backlog_files": "gauge",
        "dockline_backlog_oldest_age_seconds": "gauge",
    }
    # counters are exposed with _total (the parser strips it from the family name)
    assert "dockline_files_total{status=" in text and "dockline_records_total " in text
