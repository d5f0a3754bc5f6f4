"""Issue 11, item 4: a compact ledger.

The items table keeps each ~1 KB payload inline (a rowid table with a unique index on
``pk``), not on an overflow page of its own (the WITHOUT ROWID table of 46f3795). A data dir
made by that older code is moved to the new layout on first open, in one transaction:
a kill -9 in the middle leaves the old table whole, readers in other processes keep
reading meanwhile, and the next open finishes the move.

The old data dirs are made by the old code itself, in a subprocess: ``git archive`` of
46f3795 (skipped, with the reason, where the repository's history is not at hand).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.local import _procs
from tests.local._disks import small_tmpfs

OLD_COMMIT = "46f3795"
REPO = Path(__file__).resolve().parents[2]


# -- helpers ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def old_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dockline's source as of 46f3795 (items WITHOUT ROWID), exported with git archive."""
    target = tmp_path_factory.mktemp("orig")
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", OLD_COMMIT, "src"], capture_output=True, check=True, timeout=60
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = f"the old code ({OLD_COMMIT}) cannot be exported from {REPO}: {exc}"
        if os.environ.get("CI"):  # CI clones the whole history: a missing commit is a failure there
            pytest.fail(reason)
        print(reason)
        pytest.skip(reason)
    return target / "src"


def run_with(src: Path, data_dir: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m dockline`` with ``src`` first on the path (the old code or this one)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dockline",
            "--data-dir",
            str(data_dir),
            *(["--config", str(config)] if config else []),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir.parent,
        env={**_procs_env(), "PYTHONPATH": str(src)},
        check=False,
    )


def _procs_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKLINE_")}
    env["COLUMNS"] = "200"
    return env


def order(n: int, rng: random.Random) -> dict[str, Any]:
    """An order document of about 1 KB, like the benchmark's."""
    lines = [
        {
            "sku": f"SKU-{rng.randrange(10_000):05d}",
            "qty": rng.randrange(1, 5),
            "price": rng.randrange(100, 20_000),
            "name": f"item {rng.randrange(1000)}",
        }
        for _ in range(14)
    ]
    return {
        "id": f"order-{n:06d}",
        "customer": f"cust-{rng.randrange(1000):04d}",
        "currency": "EUR",
        "items": lines,
        "total": rng.randrange(1000, 90_000),
        "shipping": {"city": "Lyon", "zip": "69001", "express": rng.random() < 0.3},
    }


def drop_orders(data_dir: Path, first: int, count: int, *, seed: int = 1) -> None:
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for n in range(first, first + count):
        (incoming / f"order-{n:06d}.json").write_bytes(json.dumps(order(n, rng)).encode())


def table_sql(db: Path, name: str) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0])
    finally:
        conn.close()


def all_items(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True)
    try:
        return list(
            conn.execute(
                "SELECT pk, payload, content_hash, file_id, record_index, processed_at, generation, route"
                " FROM items ORDER BY pk"
            )
        )
    finally:
        conn.close()


def overflow_pages(db: Path, table: str) -> tuple[int, int]:
    """(overflow pages, all pages) of ``table``, from SQLite's dbstat."""
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT sum(pagetype = 'overflow'), count(*) FROM dbstat WHERE name = ?", (table,)
        ).fetchone()
        return int(row[0] or 0), int(row[1])
    finally:
        conn.close()


def db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def fill_old_ledger(db: Path, count: int) -> None:
    """Add ``count`` ~1 KB items to an old-layout ledger, as the old code's insert writes them
    (one files row owns them): the size of a ledger that has seen a busy year of orders."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        file_id = conn.execute("SELECT min(id) FROM files").fetchone()[0]
        payload = json.dumps(order(0, random.Random(3)), separators=(",", ":"))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO items (pk, payload, content_hash, file_id, record_index, processed_at) VALUES (?, ?, NULL, ?,"
            " ?, '2026-01-01T00:00:00.000Z')",
            ((f"bulk-{n:07d}", payload.replace("order-000000", f"bulk-{n:07d}"), file_id, n) for n in range(count)),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.fixture
def old_data_dir(old_src: Path, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(data dir, config): 20 order files processed by the OLD code, items WITHOUT ROWID."""
    data_dir = tmp_path / "data"
    config = _procs.write_config(tmp_path / "dockline.toml")
    drop_orders(data_dir, 0, 20)
    done = run_with(old_src, data_dir, "run", "--once", "--quiet", config=config)
    assert done.returncode == 0, done.stderr
    assert "WITHOUT ROWID" in table_sql(data_dir / "dockline.db", "items"), "the old code made the old layout"
    yield data_dir, config


# -- the layout ------------------------------------------------------------------------------
def test_item4_one_kb_payloads_sit_inline_with_no_overflow_pages(tmp_path: Path) -> None:
    # GIVEN 200 order files of about 1 KB each
    data_dir = tmp_path / "data"
    config = _procs.write_config(tmp_path / "dockline.toml")
    drop_orders(data_dir, 0, 200)
    # WHEN this code processes them
    done = _procs.run(data_dir, "run", "--once", "--quiet", config=config)
    assert done.returncode == 0, done.stderr
    # THEN every item is stored and none of them spilled onto an overflow page
    db = data_dir / "dockline.db"
    assert len(all_items(db)) == 200
    sizes = [len(str(row[1])) for row in all_items(db)]
    assert min(sizes) > 950, f"the payloads are ~1 KB, as in the issue: {min(sizes)}-{max(sizes)} B"
    overflow, pages = overflow_pages(db, "items")
    assert overflow == 0, f"{overflow} of {pages} pages of items are overflow pages"
    # and several items share a page (the old layout used one 4 KB page each, at least)
    assert pages * 3 <= 200, f"items use {pages} pages for 200 items of ~1 KB"


def test_item4_pk_stays_unique_and_never_null() -> None:
    # GIVEN the items table as this code creates it
    from dockline.local.compact import ITEMS_TABLE

    conn = sqlite3.connect(":memory:")
    conn.execute(ITEMS_TABLE.format(name="items"))
    conn.execute("INSERT INTO items (pk, payload, file_id, processed_at) VALUES ('a', '{}', 1, 't')")
    # WHEN a second item with the same pk, or one with no pk, is inserted
    # THEN SQLite refuses both (a rowid table's PRIMARY KEY alone would let NULL in)
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute("INSERT INTO items (pk, payload, file_id, processed_at) VALUES ('a', '{}', 2, 't')")
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        conn.execute("INSERT INTO items (pk, payload, file_id, processed_at) VALUES (NULL, '{}', 2, 't')")
    # and the ledger's conflict target is that key
    conn.execute(
        "INSERT INTO items (pk, payload, file_id, processed_at) VALUES ('a', '{\"x\":1}', 3, 't')"
        " ON CONFLICT (pk) DO NOTHING"
    )
    assert conn.execute("SELECT file_id FROM items").fetchall() == [(1,)]


@pytest.mark.slow
def test_item4_ledger_for_5000_small_files_is_within_2x_the_plain_loop(tmp_path: Path) -> None:
    # GIVEN 5,000 ~1 KB order files (the benchmark's small-files case; it holds 1.5x, this a generous 2x)
    data_dir = tmp_path / "data"
    config = _procs.write_config(tmp_path / "dockline.toml")
    drop_orders(data_dir, 0, 5000)
    incoming = data_dir / "bucket" / "incoming"
    # WHEN the plain loop a user would write stores them (bench/run.py's RAW_SMALL)
    plain = tmp_path / "plain.db"
    conn = sqlite3.connect(plain, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE items (pk TEXT PRIMARY KEY, payload TEXT, sha256 TEXT)")
    for entry in os.scandir(incoming):
        data = Path(entry.path).read_bytes()
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO items VALUES (?, ?, ?)",
            (json.loads(data)["id"], data.decode(), hashlib.sha256(data).hexdigest()),
        )
        conn.execute("COMMIT")
    conn.close()
    # and dockline processes them
    done = _procs.run(data_dir, "run", "--once", "--quiet", config=config, timeout=300)
    assert done.returncode == 0, done.stderr
    # THEN dockline's database is at most twice the plain loop's
    ours, theirs = db_bytes(data_dir / "dockline.db"), db_bytes(plain)
    print(f"dockline {ours / 1e6:.2f} MB, plain loop {theirs / 1e6:.2f} MB: {ours / theirs:.2f}x")
    assert len(all_items(data_dir / "dockline.db")) == 5000
    assert ours <= 2 * theirs, f"dockline's ledger is {ours / theirs:.2f}x the plain loop's ({ours:,} B)"


# -- an old data dir ---------------------------------------------------------------------------
def test_item4_old_data_dir_is_moved_on_first_open_with_every_item_and_rule_kept(
    old_data_dir: tuple[Path, Path],
) -> None:
    # GIVEN a data dir the old code made (20 orders, items WITHOUT ROWID)
    data_dir, config = old_data_dir
    db = data_dir / "dockline.db"
    before = all_items(db)
    listed_before = _procs.run(data_dir, "ledger", "list", "--all", "--json").stdout
    assert len(before) == 20
    # WHEN this code runs on it, with one new order, one order already stored again under a
    # new name (same record: a duplicate) and one order's id with other content (a conflict)
    drop_orders(data_dir, 20, 1)
    incoming = data_dir / "bucket" / "incoming"
    (incoming / "again.json").write_bytes((incoming / "order-000003.json").read_bytes())
    other = json.loads((incoming / "order-000004.json").read_bytes())
    other["customer"] = "someone else"
    (incoming / "changed.json").write_bytes(json.dumps(other).encode())
    done = _procs.run(data_dir, "run", "--once", "--quiet", config=config)
    assert done.returncode == 0, done.stderr
    # THEN the items table has the compact layout, with every old item as it was
    assert "WITHOUT ROWID" not in table_sql(db, "items")
    after = all_items(db)
    assert [row for row in after if row[0] != "order-000020"] == before
    assert overflow_pages(db, "items")[0] == 0
    # and the rules judged against the moved items as before
    states = {row["key"]: row["status"] for row in _procs_json(data_dir, "files", "list", "--all")}
    assert states["incoming/order-000020.json"] == "processed"
    assert states["incoming/again.json"] == "duplicate"
    assert states["incoming/changed.json"] == "conflict"
    # and the listing of the old items is the same
    listed = {item["pk"]: item for item in json.loads(_procs.run(data_dir, "ledger", "list", "--all", "--json").stdout)}
    for item in json.loads(listed_before):
        assert listed[item["pk"]] == item
    # and SQLite finds the file sound
    assert _procs.peek(data_dir, "PRAGMA integrity_check") == [("ok",)]


def _procs_json(data_dir: Path, *args: str) -> Any:
    done = _procs.run(data_dir, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for_line(proc: subprocess.Popen[str], word: str, timeout: float = 60) -> str:
    """Read ``proc``'s stderr until a line with ``word`` (fails if it ends first)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if word in line:
            return line
    raise AssertionError(f"no line with {word!r} from {proc.args}: {''.join(seen)}")


@pytest.mark.slow
def test_item4_kill_9_during_the_move_leaves_the_old_table_and_readers_keep_reading(
    old_data_dir: tuple[Path, Path],
) -> None:
    # GIVEN an old data dir with a big ledger (20 orders plus 20,000 ~1 KB items: ~90 MB)
    data_dir, config = old_data_dir
    db = data_dir / "dockline.db"
    fill_old_ledger(db, 20_000)
    before = all_items(db)
    old_size = db_bytes(db)
    files_before = _procs_json(data_dir, "files", "list", "--all")
    # WHEN this code starts on it and is stopped mid-move (it says so on stderr first)
    proc = _procs.dockline(data_dir, "run", "--once", "--quiet", config=config)
    try:
        line = wait_for_line(proc, "compact layout")
        os.kill(proc.pid, signal.SIGSTOP)
        # THEN the message is one line
        assert line.count("\n") == 1 and "Traceback" not in line
        # and the move had not committed yet: the old layout is what readers see
        assert "WITHOUT ROWID" in table_sql(db, "items")
        # and readers in other processes keep working meanwhile, on the old table
        assert _procs_json(data_dir, "files", "list", "--all") == files_before
        status = _procs.run(data_dir, "status")
        assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
        newest = _procs_json(data_dir, "ledger", "list", "--limit", "3")
        assert len(newest) == 3
        assert _procs.peek(data_dir, "SELECT count(*) FROM items") == [(len(before),)]
        # WHEN it is killed there (kill -9)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # THEN the old table is whole, and the file sound
    assert "WITHOUT ROWID" in table_sql(db, "items")
    assert all_items(db) == before
    assert _procs.peek(data_dir, "PRAGMA integrity_check") == [("ok",)]
    # WHEN the next run opens it
    again = _procs.run(data_dir, "run", "--once", "--quiet", config=config, timeout=300)
    # THEN it finishes the move, every item as it was, and none on an overflow page
    assert again.returncode == 0, again.stderr
    assert "compact layout" in again.stderr
    assert "WITHOUT ROWID" not in table_sql(db, "items")
    assert all_items(db) == before
    assert overflow_pages(db, "items")[0] == 0
    assert _procs_json(data_dir, "files", "list", "--all") == files_before
    # and the old table's pages went back to the disk: a quarter of the size, no free pages left
    assert _procs.peek(data_dir, "PRAGMA freelist_count") == [(0,)]
    assert db_bytes(db) * 3 < old_size, f"{db_bytes(db):,} B after the move, {old_size:,} B before"
    # and a later open says nothing (there is nothing left to move)
    quiet = _procs.run(data_dir, "run", "--once", "--quiet", config=config)
    assert quiet.returncode == 0 and "compact layout" not in quiet.stderr, quiet.stderr


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs (grown later with a remount)."""
    yield from small_tmpfs(tmp_path, 16)


def test_item4_too_little_free_disk_keeps_the_old_layout_working_until_there_is_room(
    old_src: Path, small_disk: Path, tmp_path: Path
) -> None:
    # GIVEN an old data dir of ~6 MB on a 16 MB disk: the copy and the VACUUM may need 18 MB
    data_dir = small_disk / "data"
    config = _procs.write_config(tmp_path / "dockline.toml")
    drop_orders(data_dir, 0, 20)
    assert run_with(old_src, data_dir, "run", "--once", "--quiet", config=config).returncode == 0
    db = data_dir / "dockline.db"
    fill_old_ledger(db, 1_200)
    before = all_items(db)
    # WHEN this code runs on it with a new order
    drop_orders(data_dir, 20, 1)
    done = _procs.run(data_dir, "run", "--once", "--quiet", config=config)
    # THEN it says in one line why the ledger keeps its layout, and works on that layout
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "older, larger layout" in line]
    assert len(said) == 1 and "MB free" in said[0], done.stderr
    assert "Traceback" not in done.stderr
    assert "WITHOUT ROWID" in table_sql(db, "items")
    after = all_items(db)
    assert [row for row in after if row[0] != "order-000020"] == before
    assert len(after) == len(before) + 1
    # WHEN the disk has room again
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = _procs.run(data_dir, "run", "--once", "--quiet", config=config)
    # THEN the next run moves it, every item kept
    assert again.returncode == 0, again.stderr
    assert "WITHOUT ROWID" not in table_sql(db, "items")
    assert all_items(db) == after
    assert _procs.peek(data_dir, "PRAGMA integrity_check") == [("ok",)]
