"""The console's ASGI app: one page, its static files and a small JSON API.

``create_app`` builds it from ``routes(source)`` plus any ``extra`` routes, so another
endpoint (``/metrics``) is one more entry in the list. Every read runs in a worker
thread with its own read-only engine; every answer is JSON or a static file: user data
never becomes HTML on the server, the page sets it as text.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dockline.console import actions, data
from dockline.console.access import Access
from dockline.console.source import DataSource, NoData
from dockline.errors import DocklineError, UsageError
from dockline.jsonx import dumps
from dockline.local.lock import DatabaseUnavailable

STATIC = Path(__file__).parent / "static"
STATUS_SHARED_SECONDS = 2.0


class _JSON(JSONResponse):
    """dockline's own JSON: numbers exact (Decimals stay Decimals), as ``--json`` prints."""

    def render(self, content: Any) -> bytes:
        return bytes(dumps(content))


def _answer(work: Callable[[], Any]) -> Callable[[Request], Any]:
    async def endpoint(_request: Request) -> Response:
        return await _run(work)

    return endpoint


async def _run(work: Callable[[], Any]) -> Response:
    """``work`` in a worker thread; dockline's one-line errors become JSON ``{"error"}``."""
    try:
        return _JSON(await run_in_threadpool(work))
    except NoData as exc:
        return _JSON({"error": str(exc)}, status_code=503)
    except UsageError as exc:
        return _JSON({"error": str(exc)}, status_code=400)
    except DatabaseUnavailable as exc:  # another process holds the lock too long, a full disk
        return _JSON({"error": str(exc)}, status_code=503)
    except DocklineError as exc:
        return _JSON({"error": str(exc)}, status_code=500)


class _Shared:
    """One answer of ``work`` shared by every request within ``seconds`` of it: the status
    walks the bucket (0.6-1 s for 20,000 files), so several open pages cost one walk."""

    def __init__(self, work: Callable[[], Any], seconds: float) -> None:
        self.work, self.seconds = work, seconds
        self._lock = threading.Lock()
        self._value: tuple[float, Any] | None = None

    def __call__(self) -> Any:
        with self._lock:  # a request arriving during a walk waits for it and shares it
            if self._value is None or time.monotonic() - self._value[0] > self.seconds:
                self._value = (time.monotonic(), self.work())
            return self._value[1]

    def forget(self) -> None:
        """After an action: the next request reads afresh."""
        with self._lock:
            self._value = None


def routes(source: DataSource) -> list[BaseRoute]:
    """The console's routes over ``source``."""

    def read(view: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        def work() -> Any:
            with source.reading() as engine:
                return view(engine, *args)

        return work

    status = _Shared(read(data.status), STATUS_SHARED_SECONDS)

    async def act(work: Callable[[], Any]) -> Response:
        try:
            return await _run(work)
        finally:
            status.forget()

    async def browse(request: Request) -> Response:
        what, params = request.path_params["what"], dict(request.query_params)
        return await _run(read(data.browse, what, params))

    async def redrive(request: Request) -> Response:
        body = await _json_body(request)
        letter = body.get("id") if isinstance(body, dict) else None
        if not isinstance(letter, str) or not letter:
            return _JSON({"error": 'send {"id": "<dead letter id, prefix or key>"}'}, status_code=400)
        return await act(lambda: actions.redrive(source, letter))

    async def redeliver(request: Request) -> Response:
        nid = int(request.path_params["nid"])
        return await act(lambda: actions.redeliver(source, nid))

    async def redeliver_failed(_request: Request) -> Response:
        return await act(lambda: actions.redeliver(source, None, failed=True))

    return [
        Route("/", lambda _r: FileResponse(STATIC / "index.html"), methods=["GET", "HEAD"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/api/status", _answer(status)),
        Route("/api/charts", _answer(read(data.per_minute))),
        Route("/api/failed", _answer(read(data.failed_files))),
        Route("/api/dead-letters", _answer(read(data.dead_letters))),
        Route("/api/deliveries", _answer(read(data.deliveries))),
        Route("/api/browse/{what:str}", browse),
        Route("/api/dead-letters/redrive", redrive, methods=["POST"]),
        Route("/api/notifications/{nid:int}/redeliver", redeliver, methods=["POST"]),
        Route("/api/notifications/redeliver-failed", redeliver_failed, methods=["POST"]),
    ]


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def create_app(
    source: DataSource, *, token: str | None, loopback: bool, extra: Sequence[BaseRoute] = ()
) -> Starlette:
    """The console over ``source``. ``token``: asked on every request when set (see
    ``access``); ``loopback``: served on a loopback address only. ``extra``: more routes."""
    return Starlette(
        routes=[*routes(source), *extra],
        middleware=[Middleware(Access, token=token, loopback=loopback)],
    )
