"""Read-only views of the local SQLite file for the CLI and the demo."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from dockline.jsonx import loads_exact
from dockline.local.db import Database
from dockline.models import Status

_ITEM_COLUMNS = (
    "i.pk, i.payload, i.content_hash, f.bucket, f.key, f.version, f.size, i.record_index, f.event_time,"
    " i.processed_at FROM items i JOIN files f ON f.id = i.file_id"
)


def _item(row: Any) -> dict[str, Any]:
    payload = row["payload"]
    item = {
        "pk": row["pk"],
        "payload": loads_exact(payload) if payload is not None else None,
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
        item["record_index"] = row["record_index"]
    if payload is None:  # too big to store inline: a reference to the object plus its hash
        item["oversized"] = True
        item["payload_ref"] = f"{row['bucket']}/{row['key']}?sha256={row['version']}"
    return item


def list_items(db: Database, *, limit: int | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {_ITEM_COLUMNS} ORDER BY i.processed_at, i.pk"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [_item(row) for row in db.query(sql)]


def get_item(db: Database, pk: str) -> dict[str, Any] | None:
    rows = db.query(f"SELECT {_ITEM_COLUMNS} WHERE i.pk = ?", (pk,))
    return _item(rows[0]) if rows else None


def list_files(db: Database, *, status: Status | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    sql = (
        "SELECT bucket, key, version, status, error, pk, attempts, records, duplicates, conflicts, skipped,"
        " skipped_total, size,"
        " received_at, updated_at, notified FROM files"
    )
    params: tuple[object, ...] = ()
    if status is not None:
        sql += " WHERE status = ?"
        params = (str(status),)
    sql += " ORDER BY received_at, key"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [
        {
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
            "bucket": row["bucket"],
            "sha256": row["version"],
            "size": row["size"],
            "received_at": row["received_at"],
            "updated_at": row["updated_at"],
            "notified": bool(row["notified"]),
        }
        for row in db.query(sql, params)
    ]


def status_counts(db: Database) -> dict[str, int]:
    return {row["status"]: row["n"] for row in db.query("SELECT status, count(*) AS n FROM files GROUP BY status")}
