"""The console's ``/metrics``: the registry ``dockline run --metrics-port`` serves
(``local/metrics.py``), read from the data dir at each scrape, behind the console's own
access rules (a Prometheus job off loopback sends ``Authorization: Bearer TOKEN``)."""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dockline.config import Settings


def metrics_route(data_dir: Path, settings: Settings) -> Route:
    def scrape() -> Response:
        if not (data_dir / "dockline.db").exists():
            # Nothing to count yet is not an error of the scraper's: 503 until a run made one.
            return PlainTextResponse(f"no dockline data in {data_dir} yet\n", status_code=503)
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        from dockline.local.metrics import DataDirCollector

        collector = DataDirCollector(data_dir, settings)
        try:
            found = CollectorRegistry(auto_describe=False)
            found.register(collector)
            return Response(generate_latest(found), media_type=CONTENT_TYPE_LATEST)
        finally:
            collector.db.close()  # a fresh read-only look each scrape, as the console's other reads

    async def endpoint(_request: Request) -> Response:
        return await run_in_threadpool(scrape)

    return Route("/metrics", endpoint, methods=["GET"])
