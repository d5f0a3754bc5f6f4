"""``dockline ledger export`` and ``ledger list --json``: items streamed out in constant memory.

Rows come one at a time from ``queries.item_rows``; each is written as soon as it is
read, so memory does not depend on the ledger's size. Payloads are written from their
stored canonical JSON text, never parsed, so every number is the exact number stored.

CSV columns (``CSV_COLUMNS``): the item's identity and times, and the payload as its
canonical JSON text in one column. Flattening top-level fields was the other choice;
it needs every item's fields known before the header is written (a second pass, or a
header that changes), and nested values would still be JSON text.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from dockline.errors import UsageError
from dockline.jsonx import dumps
from dockline.local.queries import item

CSV_COLUMNS = (
    "pk",
    "key",
    "bucket",
    "sha256",
    "record_index",
    "received_at",
    "processed_at",
    "content_hash",
    "payload",
    "payload_ref",
)


def write_json_array(rows: Iterable[sqlite3.Row], out: IO[bytes], *, on_row: Callable[[], None] | None = None) -> int:
    """One JSON array, one item per line, written as the rows come. Returns the count."""
    count = 0
    for row in rows:
        out.write(b"[\n" if count == 0 else b",\n")
        out.write(dumps(item(row, raw=True)))
        count += 1
        if on_row is not None:
            on_row()
    out.write(b"[]\n" if count == 0 else b"\n]\n")
    return count


def write_ndjson(rows: Iterable[sqlite3.Row], out: IO[bytes], *, on_row: Callable[[], None] | None = None) -> int:
    """One item per line (JSON Lines), as ``ledger get --json`` shows it. Returns the count."""
    count = 0
    for row in rows:
        out.write(dumps(item(row, raw=True)) + b"\n")
        count += 1
        if on_row is not None:
            on_row()
    return count


def write_csv(rows: Iterable[sqlite3.Row], out: IO[bytes], *, on_row: Callable[[], None] | None = None) -> int:
    """A header line, then one line per item (``CSV_COLUMNS``; RFC 4180 quoting, UTF-8,
    CRLF line ends). Returns the count."""
    text = _TextOut(out)
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        payload = row["payload"]
        writer.writerow(
            (
                row["pk"],
                row["key"],
                row["bucket"],
                row["version"],
                "" if row["record_index"] is None else row["record_index"],
                row["event_time"] or "",
                row["processed_at"],
                row["content_hash"] or hashlib.sha256(payload.encode()).hexdigest(),
                payload if payload is not None else "",
                "" if payload is not None else f"{row['bucket']}/{row['key']}?sha256={row['version']}",
            )
        )
        count += 1
        if on_row is not None:
            on_row()
    return count


class _TextOut:
    """The ``write`` csv.writer needs, encoding each line to UTF-8 (surrogates escaped as a
    key from a non-UTF-8 file name is stored, so no key makes the export fail)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, text: str) -> int:
        self.out.write(text.encode("utf-8", "surrogateescape"))
        return len(text)


def check_out_path(out: Path, *, bucket_dir: Path, database: Path) -> Path:
    """Where ``--out`` may be written: its folder exists, it is outside the bucket (a file
    written there would be picked up as input) and not the database being read (or its
    WAL, index or lock file). Raises UsageError (one line) if not."""
    target = out.expanduser().absolute()
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {out}: the folder {folder} does not exist")
    if target.is_dir():
        raise UsageError(f"cannot write {out}: it is a folder")
    resolved = folder.resolve() / target.name
    bucket = bucket_dir.resolve()
    if resolved == bucket or bucket in resolved.parents:
        raise UsageError(f"cannot write {out}: it is inside the bucket {bucket_dir}, where it would be ingested")
    db = database.resolve()
    if resolved in {db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", ".lock"))}:
        raise UsageError(f"cannot write {out}: it is the ledger database being exported")
    return resolved


@contextmanager
def atomic_output(target: Path) -> Iterator[IO[bytes]]:
    """A file that appears at ``target`` whole or not at all: written to a temporary file
    beside it, flushed to disk, then renamed over ``target``. Its mode is what a plain
    ``open`` would give (0666 less the umask). Raises UsageError when it cannot be written."""
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        Path(temp).chmod(0o666 & ~umask)
        Path(temp).replace(target)
    except OSError as exc:
        with suppress(OSError):
            Path(temp).unlink()
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        with suppress(OSError):
            Path(temp).unlink()
        raise
