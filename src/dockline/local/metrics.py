"""Prometheus metrics of a local data dir, read from the data dir at scrape time.

``registry(data_dir, settings)`` is what ``dockline run --metrics-port`` serves and what
the console mounts at ``/metrics``: any number of processes may serve it for one data
dir, and all show the same numbers, because nothing is counted in memory. The counters
are the rows' contributions plus what rows gave up when a redrive, a redelivery or
``prune`` changed them (``local/counters.py``), so they only go up, across processes and
restarts; the gauges are read when scraped:

    dockline_files_total{status}                counter   files settled, by final state
    dockline_records_total                      counter   records written by settled files
    dockline_bytes_total                        counter   bytes of settled files
    dockline_deliveries_total{outcome}          counter   deliveries delivered / failed for good
    dockline_dead_letters_total                 counter   dead letters sent
    dockline_file_duration_seconds              histogram claim to settle, per file
    dockline_files_in_flight                    gauge     files a live worker holds now
    dockline_backlog_files                      gauge     matching files not settled yet
    dockline_backlog_oldest_age_seconds         gauge     how long the oldest has waited (0: none)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from dockline.config import Settings
from dockline.errors import UsageError
from dockline.local import counters
from dockline.local.db import Database
from dockline.local.status import read_backlog, read_in_flight
from dockline.local.store import FolderStore

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer


class DataDirCollector(Collector):
    """Reads one data dir at each scrape, through a read-only connection (never a lock)."""

    def __init__(self, data_dir: Path, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.db = Database(data_dir / "dockline.db", read_only=True)
        self.store = FolderStore(data_dir / "bucket", max_object_bytes=settings.pipeline.max_object_bytes)
        self.pipeline = settings.pipeline
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        counts = counters.read(self.db.connection())
        files = CounterMetricFamily("dockline_files", "Files settled, by final state.", labels=["status"])
        for status, n in sorted(counts.files.items()):
            files.add_metric([status], n)
        yield files
        yield CounterMetricFamily("dockline_records", "Records written by settled files.", value=counts.records)
        yield CounterMetricFamily("dockline_bytes", "Bytes of settled files.", value=counts.bytes)
        deliveries = CounterMetricFamily(
            "dockline_deliveries", "Deliveries to subscriptions, by outcome.", labels=["outcome"]
        )
        for outcome, n in sorted(counts.deliveries.items()):
            deliveries.add_metric([outcome], n)
        yield deliveries
        yield CounterMetricFamily("dockline_dead_letters", "Dead letters sent.", value=counts.dead_letters)
        buckets = [(repr(float(le)), n) for le, n in counts.durations] + [("+Inf", counts.duration_count)]
        yield HistogramMetricFamily(
            "dockline_file_duration_seconds",
            "Seconds from claiming a file to settling it (the attempt that settled it).",
            buckets=buckets,
            sum_value=counts.duration_sum,
        )
        now = self._clock()
        yield GaugeMetricFamily(
            "dockline_files_in_flight", "Files a live worker holds now.", value=len(read_in_flight(self.db, now))
        )
        backlog = read_backlog(self.db, self.store, self.pipeline, now=now)
        yield GaugeMetricFamily("dockline_backlog_files", "Matching files not settled yet.", value=backlog.files)
        yield GaugeMetricFamily(
            "dockline_backlog_oldest_age_seconds",
            "Seconds the oldest file of the backlog has waited since it last changed (0: no backlog).",
            value=backlog.oldest_age_seconds or 0.0,
        )


def registry(data_dir: Path, settings: Settings) -> CollectorRegistry:
    """A registry holding only dockline's metrics of ``data_dir`` (no process metrics, so
    two servers of one data dir show the same series). Raises DocklineError (one line)
    when the data dir's database cannot be opened."""
    found = CollectorRegistry(auto_describe=False)
    found.register(DataDirCollector(data_dir, settings))
    return found


def serve(metrics: CollectorRegistry, *, host: str, port: int) -> tuple[WSGIServer, int]:
    """Serve ``/metrics`` in a daemon thread. Returns the server and the port it listens
    on (``port`` 0 picks a free one). Raises UsageError when the address cannot be bound."""
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=host, registry=metrics)
    except OSError as exc:
        raise UsageError(f"--metrics-port {port}: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return server, int(server.server_port)
