"""Read-only views of the local SQLite file for the CLI and the demo."""

from __future__ import annotations

from typing import Any

import orjson

from dockline.jsonx import loads_exact
from dockline.local.db import Database
from dockline.models import Status

_ITEM_COLUMNS = (
    "pk, payload, payload_ref, oversized, content_hash, bucket, key, version, status, size, record_index,"
    " received_at, processed_at"
)


def _item(row: Any) -> dict[str, Any]:
    item = {
        "pk": row["pk"],
        "payload": loads_exact(row["payload"]) if row["payload"] is not None else None,
        "bucket": row["bucket"],
        "key": row["key"],
        "status": row["status"],
        "sha256": row["version"],
        "content_hash": row["content_hash"],
        "size": row["size"],
        "received_at": row["received_at"],
        "processed_at": row["processed_at"],
    }
    if row["record_index"] is not None:
        item["record_index"] = row["record_index"]
    if row["oversized"]:
        item["oversized"] = True
        item["payload_ref"] = row["payload_ref"]
    return item


def list_items(db: Database, *, limit: int | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {_ITEM_COLUMNS} FROM items ORDER BY processed_at, pk"  # noqa: S608 - constant columns
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [_item(row) for row in db.query(sql)]


def get_item(db: Database, pk: str) -> dict[str, Any] | None:
    rows = db.query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE pk = ?", (pk,))  # noqa: S608 - constant columns
    return _item(rows[0]) if rows else None


def list_files(db: Database, *, status: Status | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    sql = (
        "SELECT bucket, key, version, status, error, pk, attempts, records, duplicates, conflicts, skipped, size,"
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
