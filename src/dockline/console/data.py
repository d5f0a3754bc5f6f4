"""The console's reads: each takes a read-only engine and returns JSON-ready values.

Everything shown comes from the same code as the CLI: ``status`` is ``read_status`` (the
numbers of ``status --json``), the lists are ``queries.file_rows`` / ``item_rows`` with
``listing.page_filter``, and dead letters are the engine's. Only the per-minute chart
and the newest notifications have queries of their own, each one statement.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dockline.errors import UsageError
from dockline.models import Status

if TYPE_CHECKING:
    from dockline.local.engine import LocalEngine

PAGE = 50  # rows per list on the page
CHART_MINUTES = 60
_FINAL = tuple(str(s) for s in Status if s.is_final)
# Only placeholders are formatted in; every value is bound.
_MARKS = ", ".join("?" for _ in _FINAL)
_PER_MINUTE = (
    "SELECT substr(updated_at, 1, 16) AS minute, status, count(*) AS files,"  # noqa: S608
    f" coalesce(sum(records), 0) AS records FROM files WHERE status IN ({_MARKS})"
    " AND updated_at >= ? GROUP BY minute, status"
)


def status(engine: LocalEngine) -> dict[str, Any]:
    """``dockline status --json``'s object, for the same data dir."""
    from dockline.local.status import read_status

    report = read_status(engine.db, engine.store, engine.settings.pipeline, now=time.time())
    return report.to_json()


def per_minute(engine: LocalEngine, *, now: datetime | None = None) -> dict[str, Any]:
    """The last hour, per minute (UTC): files settled by outcome, and the throughput
    (files/s and records/s averaged over each minute). One GROUP BY over the files table;
    a settled row's ``updated_at`` is when it settled."""
    end = (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    minutes = [end - timedelta(minutes=n) for n in range(CHART_MINUTES - 1, -1, -1)]
    keys = [m.strftime("%Y-%m-%dT%H:%M") for m in minutes]
    rows = engine.db.query(_PER_MINUTE, (*_FINAL, keys[0]))
    index = {key: n for n, key in enumerate(keys)}
    outcomes = {state: [0] * CHART_MINUTES for state in _FINAL}
    files = [0] * CHART_MINUTES
    records = [0] * CHART_MINUTES
    for row in rows:
        n = index.get(str(row["minute"]))
        if n is None:  # a clock moved backwards: a row stamped after now
            continue
        outcomes[str(row["status"])][n] += int(row["files"])
        files[n] += int(row["files"])
        records[n] += int(row["records"])
    return {
        "minutes": [m.strftime("%H:%M") for m in minutes],
        "outcomes": outcomes,
        "files_per_second": [round(n / 60, 3) for n in files],
        "records_per_second": [round(n / 60, 3) for n in records],
    }


def failed_files(engine: LocalEngine) -> dict[str, Any]:
    """The newest failed files with their reasons."""
    from dockline.listing import Page
    from dockline.local.queries import Filter, file_rows

    where = Filter(status=Status.FAILED, limit=PAGE + 1)
    page = Page.of(file_rows(engine.db, where), where)
    rows = [
        {"key": r["key"], "sha256": r["sha256"], "attempts": r["attempts"], "error": r["error"], "at": r["updated_at"]}
        for r in page
    ]
    return {"rows": rows, "more": page.more}


def dead_letters(engine: LocalEngine) -> dict[str, Any]:
    """Every dead letter (oldest first, as ``dlq list``), with the short id ``dlq redrive`` takes."""
    from dockline.redrive import short_id

    letters = list(engine.dead_letters.list())
    rows = [
        {
            "id": letter.id,
            "short_id": short_id(letter),
            "key": letter.ref.key,
            "attempts": letter.attempts,
            "failed_at": letter.failed_at,
            "reason": letter.reason,
        }
        for letter in letters[:PAGE]
    ]
    return {"rows": rows, "total": len(letters)}


def deliveries(engine: LocalEngine) -> dict[str, Any]:
    """The newest notifications and each one's deliveries. ``SELECT *`` on deliveries: a
    data dir no writer has opened since an upgrade may lack the schedule's columns."""
    db = engine.db
    notes = db.query(
        "SELECT id, subject, message, published_at FROM notifications ORDER BY id DESC LIMIT ?", (PAGE,)
    )
    ids = [int(n["id"]) for n in notes]
    by_note: dict[int, list[dict[str, Any]]] = {nid: [] for nid in ids}
    if ids:
        marks = ", ".join("?" for _ in ids)
        for d in db.query(
            f"SELECT * FROM deliveries WHERE notification_id IN ({marks}) ORDER BY subscription",  # noqa: S608
            tuple(ids),
        ):
            by_note[int(d["notification_id"])].append(_delivery(d))
    rows = [
        {
            "id": int(n["id"]),
            "subject": n["subject"],
            "message": n["message"],
            "published_at": n["published_at"],
            "deliveries": by_note[int(n["id"])],
        }
        for n in notes
    ]
    return {"rows": rows, "subscriptions": sorted(engine.deliveries.subscriptions)}


def _delivery(row: Any) -> dict[str, Any]:
    columns = row.keys()
    return {
        "subscription": row["subscription"],
        "status": row["status"],
        "attempts": row["attempts"],
        "error": row["error"],
        "next_attempt_at": row["next_attempt_at"] if "next_attempt_at" in columns else None,
        "updated_at": row["updated_at"],
    }


def browse(engine: LocalEngine, what: str, params: Mapping[str, str]) -> dict[str, Any]:
    """A page of the ledger (``what`` = ``items``) or of the files, newest first, filtered
    as ``ledger list`` / ``files list`` filter: ``pk`` and ``key`` prefixes, ``since``,
    ``route``, and for files ``status``. Raises UsageError for a bad filter."""
    from dockline.listing import Page, page_filter
    from dockline.local.queries import file_rows, item, item_rows

    where = page_filter(
        key=params.get("key") or None,
        pk_prefix=params.get("pk") or None,
        since=params.get("since") or None,
        limit=PAGE,
        route=params.get("route") or None,  # items read by it; files whose key it takes
    )
    if what == "items":
        page = Page.of(item_rows(engine.db, where), where)
        shown = [
            {k: v for k, v in item(row, raw=True).items() if k != "payload"} | {"payload": row["payload"]}
            for row in page
        ]
    elif what == "files":
        state = params.get("status") or None
        if state is not None:
            try:
                where = _with_status(where, Status(state))
            except ValueError:
                raise UsageError(f"status {state!r}: not one of {', '.join(s.value for s in Status)}") from None
        page = Page.of(file_rows(engine.db, where, routes=engine.settings.pipeline.table), where)
        shown = list(page)
    else:
        raise UsageError(f"nothing to browse called {what!r}: items or files")
    return {"rows": shown, "more": page.more}


def _with_status(where: Any, state: Status) -> Any:
    from dataclasses import replace

    return replace(where, status=state)
