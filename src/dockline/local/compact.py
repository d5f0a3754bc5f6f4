"""The items table's layout, and the one-time move of older ledgers to it (issue 11, item 4).

Items live in a rowid table with a unique index on ``pk``. Up to 46f3795 they lived in a
``WITHOUT ROWID`` table keyed by ``pk``: such a table is an index-shaped B-tree, whose
cells hold at most ~1,000 bytes on a 4 KB page, so each ~1 KB payload spilled onto an
overflow page of its own (27.4 MB for 5,000 small files, 3.9x a plain loop's database).
In a rowid table a cell may fill a page, so payloads sit inline (three ~1 KB items to a
4 KB page, seven to an 8 KB one); the price is a second B-tree insert per item (the
``pk`` index), measured in the README's "Performance": no slower for small files, the
same CPU for 1M NDJSON records, whose ledger grows 7% (the index outweighs the overflow
it saves when records are tiny).

After the move, a VACUUM gives the old table's pages back (one more transaction: the copy
went to the end of the file). The file keeps its page size (4 KB); new files get 8 KB.

Every statement on ``items`` names its columns and its conflict target (``pk``), so
both layouts answer the same SQL: a ledger that cannot be moved yet (not enough free
disk) keeps working as it is. The move is one transaction under the write lock: a
crash (kill -9, power loss) in the middle leaves the old table whole, and the next
open starts again. Readers in other processes see the old table until it commits.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

# Columns added in place later (db._ADDED_COLUMNS) are part of the table from the start here.
ITEMS_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
    pk TEXT PRIMARY KEY NOT NULL, -- NOT NULL: a rowid table's key would allow NULL
    payload TEXT,                 -- canonical JSON, numbers exact; NULL when oversized
    content_hash TEXT,            -- SHA-256 of the canonical payload, kept when the payload is not
    file_id INTEGER NOT NULL,     -- files.id: the object version that wrote the item
    record_index INTEGER,         -- line / row / element in per-record mode
    processed_at TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    route TEXT
)"""

# Converting a ledger at least this big says so on stderr first (it takes a while).
ANNOUNCE_BYTES = 16 * 1024 * 1024


def is_old(table_sql: str | None) -> bool:
    """Whether ``items`` (its CREATE statement from sqlite_master) has the old layout."""
    return table_sql is not None and "WITHOUT ROWID" in table_sql.upper()


def items_sql(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'items'").fetchone()
    return None if row is None else str(row[0])


def _file_bytes(conn: sqlite3.Connection) -> int:
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    return pages * int(conn.execute("PRAGMA page_size").fetchone()[0])


def room_to_move(conn: sqlite3.Connection, path: Path) -> tuple[bool, int, int]:
    """(enough, needed, free) bytes. The copy goes to the WAL, then to the end of the file;
    the VACUUM after it writes the whole compacted file to the WAL once more. With the copy
    at most the old table's size (equal for tiny records), and the old table at most the
    file, that is up to three times the file at the peak."""
    needed = 3 * _file_bytes(conn)
    stats = os.statvfs(path.parent)
    free = stats.f_bavail * stats.f_frsize
    return free >= needed, needed, free


def move_items(conn: sqlite3.Connection, path: Path, say: Callable[[str], None]) -> bool:
    """Copy an old-layout ``items`` into the compact layout in one transaction. Call it on
    the writer connection, under the write lock, outside a transaction. Returns whether it
    moved the table (False: another process did it first, or too little free disk, said
    in one line). Raises sqlite3.Error (rolled back: the old table is left as it was)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not is_old(items_sql(conn)):  # another process moved it while we waited for the lock
            conn.execute("COMMIT")
            return False
        enough, needed, free = room_to_move(conn, path)
        if not enough:
            conn.execute("COMMIT")
            say(
                f"the ledger {path} keeps its older, larger layout for now: converting it needs"
                f" about {needed / 1e6:,.0f} MB free, there are {free / 1e6:,.0f} MB"
            )
            return False
        size = _file_bytes(conn)
        if size >= ANNOUNCE_BYTES:
            say(f"converting the ledger {path} ({size / 1e6:,.0f} MB) to its compact layout, once; other writers wait")
        columns = ", ".join(str(row[1]) for row in conn.execute("PRAGMA table_info(items)"))
        conn.execute(ITEMS_TABLE.format(name="items_compact"))
        # In pk order (the old table's own): the new rowids follow it, so a pk-ordered export
        # still reads the table front to back.
        conn.execute(f"INSERT INTO items_compact ({columns}) SELECT {columns} FROM items")  # noqa: S608 (column names)
        conn.execute("DROP TABLE items")
        conn.execute("ALTER TABLE items_compact RENAME TO items")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return True
