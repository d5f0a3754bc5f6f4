"""Issue 11, NDJSON target: a big file's batches of inline records are inserted with the
values all their rows share (file, time, route) written into the statement, 3 bound values a
row instead of 7 (``local/item_writes.py`` ``_inline_insert``; small batches keep the bound one).
The rows are the ones the bound statement writes: same payload, no hash, same file, place,
time and route, whatever the route's name holds (a quote, a NUL), and a batch with an oversized
record still stores its hash."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from dockline.jsonx import dumps
from dockline.local.db import Database
from dockline.local.ledger import SQLiteLedger
from dockline.models import ConflictPolicy, ObjectRef, Record

NOW = "2026-12-01T20:00:00.123456+00:00"


def records(route: str, *, oversized_at: int | None = None, count: int = 100) -> list[Record]:
    made = []
    for i in range(1, count + 1):
        canonical = dumps({"id": f"r-{i}", "v": i / 10, "name": "it's"})
        if i == oversized_at:
            digest = hashlib.sha256(canonical).hexdigest()
            made.append(Record(f"r-{i}", None, digest, i, True, len(canonical), "", route))
        else:
            made.append(Record(f"r-{i}", {}, None, i, False, len(canonical), canonical.decode(), route))
    return made


def rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT i.pk, i.payload, i.content_hash, f.key, i.record_index, i.processed_at, i.route"
            " FROM items i JOIN files f ON f.id = i.file_id ORDER BY i.pk"
        ).fetchall()


@pytest.mark.parametrize("route", ["default", "readings", "o'brien", "a'); DROP TABLE items; --", "nul\x00route"])
@pytest.mark.parametrize("oversized_at", [None, 3])
@pytest.mark.parametrize("count", [1, 100])
def test_ndjson_inline_rows_are_the_bound_statements_rows(
    tmp_path: Path, route: str, oversized_at: int | None, count: int
) -> None:
    # GIVEN a batch of a file's records on a route (maybe with one oversized record): 100 take
    # the inline statement (``_INLINE_AT_LEAST``), 1 the bound one
    batch = records(route, oversized_at=oversized_at, count=count)
    ledger = SQLiteLedger(Database(tmp_path / "dockline.db"))
    ref = ObjectRef("bucket", "in/a.ndjson", "v1")
    # WHEN the ledger writes it
    report = ledger.write(ref, batch, policy=ConflictPolicy.REJECT, now=NOW)
    # THEN every record is written, each row as the bound statement writes it
    assert report.written == tuple(r.pk for r in batch)
    expected = [
        (
            r.pk,
            None if r.oversized else r.canonical,
            r.content_hash if r.oversized else None,
            "in/a.ndjson",
            r.index,
            NOW,
            None if route == "default" else route,
        )
        for r in batch
    ]
    assert rows(tmp_path / "dockline.db") == sorted(expected)


def test_ndjson_inline_batch_again_is_judged_as_before(tmp_path: Path) -> None:
    # GIVEN a file's records already written, and another file with one of them changed
    ledger = SQLiteLedger(Database(tmp_path / "dockline.db"))
    ledger.write(ObjectRef("bucket", "in/a.ndjson", "v1"), records("r"), policy=ConflictPolicy.REJECT, now=NOW)
    changed = records("r")
    changed[1] = Record("r-2", {}, None, 2, False, 9, '{"id":"r-2"}', "r")
    # WHEN the second file writes them  THEN the same four are duplicates and the changed one a conflict
    report = ledger.write(ObjectRef("bucket", "in/b.ndjson", "v1"), changed, policy=ConflictPolicy.REJECT, now=NOW)
    assert report.written == ()
    assert sorted(report.duplicates) == sorted(r.pk for r in changed if r.pk != "r-2")
    assert [pk for pk, _ in report.conflicts] == ["r-2"]
