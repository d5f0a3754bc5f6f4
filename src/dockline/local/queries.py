"""Read-only views of the local SQLite file for the CLI and the demo.

Every view streams: rows come from one SQLite cursor as they are read, so listing or
exporting millions of items holds one row at a time, never the whole table.

No index is added for these views: an index on the items' time would cost every
ingested record a second B-tree insert (the NDJSON benchmark's median fell by ~10%)
to speed up an occasional listing. So a page of the newest items is found by one scan
that sorts only (time, pk) pairs and keeps the newest N (1.6 s for 5M items), then
reads just those rows; files are listed in id order, which is
the order they were received (``received_at`` is set once, when the row is made).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from dockline.errors import UsageError
from dockline.jsonx import loads_exact
from dockline.local.db import Database, translate
from dockline.models import Status
from dockline.routes import DEFAULT_ROUTE, RouteTable

_ITEM_COLUMNS = (
    "i.pk, i.payload, i.content_hash, f.bucket, f.key, f.version, f.size, i.record_index, f.event_time,"
    " i.processed_at, i.route FROM items i JOIN files f ON f.id = i.file_id"
)


def _has_item_routes(db: Database) -> bool:
    """A data dir from before routes, opened read-only (so not upgraded in place), has no
    ``items.route``: its items read as NULL, the default route, which read them all."""
    return any(row[1] == "route" for row in db.query("PRAGMA table_info(items)"))


def _item_columns(db: Database) -> str:
    return _ITEM_COLUMNS if _has_item_routes(db) else _ITEM_COLUMNS.replace("i.route", "NULL AS route")


_FILE_COLUMNS = (
    "bucket, key, version, status, error, pk, attempts, records, duplicates, conflicts, skipped,"
    " skipped_total, size, received_at, updated_at, notified, dropped FROM files"
)


def _file_columns(db: Database) -> str:
    """The file columns. A data dir from before progress or transforms, opened read-only,
    lacks some: no run of this version opened it yet, so they read as NULL and 0."""
    present = {str(row[1]) for row in db.query("PRAGMA table_info(files)")}
    progress = (
        "started_at, records_done, bytes_done"
        if {"started_at", "records_done", "bytes_done"} <= present
        else "NULL AS started_at, 0 AS records_done, 0 AS bytes_done"
    )
    columns = _FILE_COLUMNS if "dropped" in present else _FILE_COLUMNS.replace("dropped FROM", "0 AS dropped FROM")
    return f"{progress}, {columns}"


@dataclass(frozen=True)
class Filter:
    """What to show. ``key`` and ``pk_prefix`` are prefixes; ``since`` is a stored
    timestamp (see ``parse_since``): items processed, files received, at or after it;
    ``limit`` None means all."""

    key: str | None = None
    pk_prefix: str | None = None
    since: str | None = None
    status: Status | None = None
    limit: int | None = None
    route: str | None = None  # items read by this route (issue 9); files whose key it takes


def stamp(moment: datetime) -> str:
    """``moment`` written as the ledger writes its times (``2026-12-01T16:24:46.123Z``), so
    stored times compare with it as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime) -> str:
    """``--since``: a relative age (``30m``, ``1h``, ``2d``, ``1w``) before ``now``, or an ISO
    date or time (``2026-12-01``, ``2026-12-01T10:00``, with ``Z`` or an offset; without
    one it is UTC). Returns the stored form (``stamp``). Raises UsageError otherwise."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        return stamp(now - timedelta(**{_UNITS[relative[2]]: int(relative[1])}))
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r}: not a time; use an age like 30m, 1h, 2d, 1w or an ISO time like 2026-12-01T10:00Z"
        ) from None
    return stamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _prefix_range(column: str, prefix: str) -> tuple[str, list[object]]:
    """``column`` starts with ``prefix``, as a range an index can answer. SQLite compares
    TEXT bytewise and UTF-8 keeps code point order, so the prefix with its last code
    point raised by one is the first string past every match."""
    last = prefix[-1]
    if ord(last) >= 0x10FFFF or 0xD7FF <= ord(last) < 0xDFFF:  # no next code point to bound by
        return f"substr({column}, 1, ?) = ?", [len(prefix), prefix]
    return f"{column} >= ? AND {column} < ?", [prefix, prefix[:-1] + chr(ord(last) + 1)]


def _stream(db: Database, sql: str, params: list[object]) -> Iterator[sqlite3.Row]:
    """Rows of ``sql`` one at a time, from a cursor of its own (read-only, so a long read
    never blocks a writer; it only keeps WAL checkpoints from passing its snapshot)."""
    cursor = db.connection().cursor()
    cursor.row_factory = sqlite3.Row
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(500):
            yield from rows
    except sqlite3.Error as exc:
        raise translate(exc) from exc
    finally:
        cursor.close()


def _where(
    where: Filter, *, pk: str, key: str, since: str, status: str | None = None, route: str | None = None
) -> tuple[str, list[object]]:
    """The WHERE clause of ``where`` over the named columns (items and files name them apart).
    ``route``: the items' route column (NULL is the default route, as written before routes)."""
    clauses: list[str] = []
    params: list[object] = []
    if route is not None and where.route is not None:
        if where.route == DEFAULT_ROUTE:
            clauses.append(f"({route} IS NULL OR {route} = ?)")
        else:
            clauses.append(f"{route} = ?")
        params.append(where.route)
    if status is not None and where.status is not None:
        clauses.append(f"{status} = ?")
        params.append(str(where.status))
    for column, prefix in ((key, where.key), (pk, where.pk_prefix)):
        if prefix:
            clause, values = _prefix_range(column, prefix)
            clauses.append(clause)
            params += values
    if where.since:
        clauses.append(f"{since} >= ?")
        params.append(where.since)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _item_where(db: Database, where: Filter) -> tuple[str, list[object]]:
    route = "i.route" if where.route is None or _has_item_routes(db) else "NULL"
    return _where(where, pk="i.pk", key="f.key", since="i.processed_at", route=route)


# A page up to this size is chosen by its pks first (their list is held while the rows
# are read); a longer one sorts whole rows in SQLite's sorter, which spills to disk.
_PAGE_BY_PK = 10_000


def item_rows(db: Database, where: Filter = Filter(), *, order: str = "newest") -> Iterator[sqlite3.Row]:
    """Ledger rows matching ``where``. ``order``: ``newest`` (processed last first),
    ``oldest``, or ``pk`` (the pk index's order: no sort at all, the cheapest for a full
    export). A pk prefix is read as a range of the pk index."""
    filtered, params = _item_where(db, where)
    ordered = {
        "newest": " ORDER BY i.processed_at DESC, i.pk DESC",
        "oldest": " ORDER BY i.processed_at, i.pk",
        "pk": " ORDER BY i.pk",
    }[order]
    if where.limit is None:
        return _stream(db, f"SELECT {_item_columns(db)}{filtered}{ordered}", params)
    if where.limit > _PAGE_BY_PK or order == "pk":
        return _stream(db, f"SELECT {_item_columns(db)}{filtered}{ordered} LIMIT ?", [*params, where.limit])
    # Sorting 5M whole rows (payloads, joined file columns) to keep 50 takes ~6 s;
    # sorting their (time, pk) pairs, then reading those 50 rows by pk, ~1 s.
    join = " JOIN files f ON f.id = i.file_id" if where.key else ""
    page = f"SELECT i.pk FROM items i{join}{filtered}{ordered} LIMIT ?"  # noqa: S608 (our clauses; values bound)
    return _stream(db, f"SELECT {_item_columns(db)} WHERE i.pk IN ({page}){ordered}", [*params, where.limit])


def count_items(db: Database, where: Filter = Filter()) -> int:
    """How many items match ``where`` (ignoring its limit): one scan, no sort (the bar's total)."""
    sql, params = _item_where(db, where)
    join = " JOIN files f ON f.id = i.file_id" if where.key else ""
    # Only our own clause text is formatted in; every value is a bound parameter.
    counted = db.query(f"SELECT count(*) AS n FROM items i{join}{sql}", tuple(params))  # noqa: S608
    return int(counted[0]["n"])


def item(row: sqlite3.Row, *, raw: bool = False) -> dict[str, Any]:
    """One ledger item as ``ledger get --json`` shows it. ``raw``: the payload stays its
    stored canonical JSON text (an ``orjson.Fragment``): exact, and not parsed at all."""
    payload = row["payload"]
    parsed: Any = None
    if payload is not None:
        parsed = orjson.Fragment(payload) if raw else loads_exact(payload)
    shown = {
        "pk": row["pk"],
        "payload": parsed,
        "bucket": row["bucket"],
        "key": row["key"],
        "status": "processed",
        "sha256": row["version"],
        "content_hash": row["content_hash"] or hashlib.sha256(payload.encode()).hexdigest(),
        "size": row["size"],
        "received_at": row["event_time"],
        "processed_at": row["processed_at"],
    }
    if row["record_index"] is not None:
        shown["record_index"] = row["record_index"]
    # NULL: the default route ([pipeline]), which also read every item written before routes
    shown["route"] = row["route"] or DEFAULT_ROUTE
    if payload is None:  # too big to store inline: a reference to the object plus its hash
        shown["oversized"] = True
        shown["payload_ref"] = f"{row['bucket']}/{row['key']}?sha256={row['version']}"
    return shown


def list_items(db: Database, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Items oldest first, as a list: for small ledgers (the demo, tests)."""
    return [item(row) for row in item_rows(db, Filter(limit=limit), order="oldest")]


def get_item(db: Database, pk: str) -> dict[str, Any] | None:
    rows = db.query(f"SELECT {_item_columns(db)} WHERE i.pk = ?", (pk,))
    return item(rows[0]) if rows else None


def file_rows(
    db: Database, where: Filter = Filter(), *, newest_first: bool = True, routes: RouteTable | None = None
) -> Iterator[dict[str, Any]]:
    """Files matching ``where``, received last first, or first first. A route filter needs
    ``routes``: a file's route is the one that takes its key, as for its notification (the
    narrowest of its prefix and ``--key`` is asked of SQLite, the rest decided here).
    Raises UsageError for a route the table does not name."""
    taken: Callable[[str], bool] = lambda _key: True  # noqa: E731 -- the no-filter case, inline
    if where.route is not None:
        if routes is None or where.route not in {r.name for r in routes.routes}:
            known = ", ".join(r.name for r in routes.routes) if routes is not None else ""
            raise UsageError(f"--route {where.route!r}: no such route; routes: {known}")
        table, name = routes, where.route
        prefix = next(r.prefix for r in routes.routes if r.name == name)
        if prefix.startswith(where.key or ""):
            where = replace(where, key=prefix or None)  # the route's prefix is the narrower
        elif where.key is not None and not where.key.startswith(prefix):
            return  # --key and the route's prefix share no key
        taken = lambda key: table.route_or_fallback(key).name == name  # noqa: E731
    filtered, params = _where(where, pk="pk", key="key", since="received_at", status="status")
    sql = f"SELECT {_file_columns(db)}" + filtered
    # id order is the order of arrival: a row is made when its version is first seen and
    # received_at is never changed after; no extra index is needed to page newest first.
    sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
    if where.limit is not None and where.route is None:
        sql += " LIMIT ?"
        params.append(where.limit)
    shown = 0
    for row in _stream(db, sql, params):
        if not taken(row["key"]):
            continue
        if where.limit is not None and shown == where.limit:
            return
        shown += 1
        yield {
            "key": row["key"],
            "status": row["status"],
            "error": row["error"],
            "pk": row["pk"],
            "attempts": row["attempts"],
            "records": row["records"],
            "duplicates": row["duplicates"],
            "conflicts": row["conflicts"],
            "skipped": orjson.loads(row["skipped"] or "[]"),
            "skipped_total": row["skipped_total"],
            "dropped": row["dropped"],
            "bucket": row["bucket"],
            "sha256": row["version"],
            "size": row["size"],
            "received_at": row["received_at"],
            "updated_at": row["updated_at"],
            "notified": bool(row["notified"]),
            # Progress of the attempt (local/progress.py): done so far while in flight, and
            # how long the settling attempt took once settled.
            "records_done": row["records_done"],
            "bytes_done": row["bytes_done"],
            "started_at": row["started_at"],
            "seconds": _seconds(row["status"], row["started_at"], row["updated_at"]),
        }


def _seconds(status: str, started_at: str | None, updated_at: str) -> float | None:
    """Claim to settle of a settled file's last attempt; None in flight or when unknown."""
    if started_at is None or not Status(status).is_final:
        return None
    elapsed = datetime.fromisoformat(updated_at) - datetime.fromisoformat(started_at)
    return round(max(0.0, elapsed.total_seconds()), 3)


def ignored_rows(db: Database, where: Filter = Filter()) -> Iterator[dict[str, Any]]:
    """Keys the last scan saw that no route takes, with the nearest route and why, by key
    (``--key`` is a prefix; a route filter keeps those nearest that route). A data dir from
    before routes has none."""
    if not db.query("SELECT name FROM sqlite_master WHERE name = 'ignored'"):
        return
    keys_only = replace(where, since=None, status=None, pk_prefix=None)
    filtered, params = _where(keys_only, pk="key", key="key", since="seen_at")
    if where.route is not None:
        filtered += (" AND" if filtered else " WHERE") + " route = ?"
        params.append(where.route)
    sql = f"SELECT key, route, why, detail, seen_at FROM ignored{filtered} ORDER BY key"  # noqa: S608 (ours)
    if where.limit is not None:
        sql += " LIMIT ?"
        params.append(where.limit)
    for row in _stream(db, sql, params):
        yield {
            "key": row["key"],
            "nearest_route": row["route"],
            "why": row["why"],
            "detail": row["detail"],
            "seen_at": row["seen_at"],
        }


def list_files(db: Database, *, status: Status | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Files oldest first, as a list: for small data dirs (the demo, tests)."""
    return list(file_rows(db, Filter(status=status, limit=limit), newest_first=False))


def status_counts(db: Database) -> dict[str, int]:
    return {row["status"]: row["n"] for row in db.query("SELECT status, count(*) AS n FROM files GROUP BY status")}
