"""A real dockline data dir with a ledger of any size, written straight into the schema.

Running the pipeline to make 5M items would take minutes; ``executemany`` in one
transaction makes them in seconds. The schema is the one ``Database`` creates, so the
file is what a real run leaves (items, their files, the indexes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dockline.local.db import Database

START = datetime(2026, 11, 1, tzinfo=UTC)
ITEMS_PER_FILE = 1000
PAYLOAD = '{"device":"thermo-%03d","hum":0.43,"id":"r-%09d","ok":true,"temp":21.5}'


def item_time(index: int) -> str:
    """Item ``index`` was processed ``index`` milliseconds after START."""
    return (START + timedelta(milliseconds=index)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_ledger(data_dir: Path, count: int, *, payload: str | None = None) -> Path:
    """``data_dir`` with ``count`` items ``r-000000000``... (item i processed i ms after
    START, 1,000 items per file ``incoming/part-<n>.ndjson``). ``payload``: the canonical
    payload text of every item instead of PAYLOAD. Returns the database path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "bucket" / "incoming").mkdir(parents=True, exist_ok=True)
    path = data_dir / "dockline.db"
    Database(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    files = (count + ITEMS_PER_FILE - 1) // ITEMS_PER_FILE
    conn.executemany(
        "INSERT INTO files (id, bucket, key, version, status, records, size, event_time, received_at, updated_at)"
        " VALUES (?, 'local', ?, ?, 'processed', ?, 1, ?, ?, ?)",
        (
            (
                n + 1,
                f"incoming/part-{n:06d}.ndjson",
                f"{n:064x}",
                min(ITEMS_PER_FILE, count - n * ITEMS_PER_FILE),
                item_time(n * ITEMS_PER_FILE),
                item_time(n * ITEMS_PER_FILE),
                item_time(n * ITEMS_PER_FILE),
            )
            for n in range(files)
        ),
    )
    conn.executemany(
        "INSERT INTO items (pk, payload, content_hash, file_id, record_index, processed_at)"
        " VALUES (?, ?, NULL, ?, ?, ?)",
        _items(count, payload),
    )
    conn.execute("COMMIT")
    conn.close()
    return path


def _items(count: int, payload: str | None) -> Iterator[tuple[object, ...]]:
    seconds = ""
    for i in range(count):
        if i % 1000 == 0:
            seconds = item_time(i)[:-5]  # "....T00:00:00" : the milliseconds follow
        yield (
            f"r-{i:09d}",
            payload if payload is not None else PAYLOAD % (i % 1000, i),
            i // ITEMS_PER_FILE + 1,
            i % ITEMS_PER_FILE,
            f"{seconds}.{i % 1000:03d}Z",
        )
