"""Issue 10, item 5: the ledger at any size. `ledger list` and `files list` page newest
first and filter; `ledger export` streams NDJSON or CSV with exact numbers, writes
--out whole or not at all, never into the bucket; all of them only read."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.cli.ledger_file import ITEMS_PER_FILE, build_ledger, item_time

Cli = Callable[..., subprocess.CompletedProcess[str]]
# Bigger than any double holds, and a fraction no float can keep.
EXACT = '{"big":123456789012345678901234567890,"id":"x","tiny":0.10000000000000000000000001}'


def pks(listed: str) -> list[str]:
    return [item["pk"] for item in json.loads(listed)]


def test_item5_ledger_list_shows_the_newest_page_and_says_there_are_more(cli: Cli) -> None:
    # GIVEN 120 items, r-000000119 processed last
    build_ledger(cli.data_dir, 120)  # type: ignore[attr-defined]
    # WHEN the ledger is listed with no options
    listed = cli("ledger", "list", "--json")
    # THEN the 50 newest come, newest first, and stderr says there are more
    assert pks(listed.stdout) == [f"r-{i:09d}" for i in range(119, 69, -1)]
    assert "there are more: use --all" in listed.stderr
    # AND the table says so in its title
    table = cli("ledger", "list").stdout
    assert "the newest 50 ledger items; there are more" in table
    assert "r-000000119" in table
    assert "r-000000069" not in table
    # AND --limit picks the newest N, --all everything, in one valid JSON array
    assert pks(cli("ledger", "list", "--json", "--limit", "3").stdout) == ["r-000000119", "r-000000118", "r-000000117"]
    everything = cli("ledger", "list", "--json", "--all")
    assert len(pks(everything.stdout)) == 120
    assert everything.stderr == ""
    ndjson = cli("ledger", "list", "--ndjson", "--all").stdout.splitlines()
    assert [json.loads(line)["pk"] for line in ndjson] == pks(everything.stdout)
    # AND --all with --limit is a one-line usage error
    both = cli("ledger", "list", "--all", "--limit", "3", check=False)
    assert (both.returncode, both.stderr) == (2, "dockline: error: use --all or --limit, not both\n")


def test_item5_ledger_list_filters_by_key_pk_prefix_and_since(cli: Cli) -> None:
    # GIVEN 3,000 items in 3 files of 1,000
    build_ledger(cli.data_dir, 3 * ITEMS_PER_FILE)  # type: ignore[attr-defined]
    # WHEN filtered by the key prefix of the first file
    by_key = pks(cli("ledger", "list", "--json", "--all", "--key", "incoming/part-000000").stdout)
    # THEN only its items come, newest first
    assert by_key == [f"r-{i:09d}" for i in range(999, -1, -1)]
    # AND a pk prefix selects by pk, combined with the key
    assert pks(cli("ledger", "list", "--json", "--all", "--pk-prefix", "r-00000201").stdout) == [
        f"r-{i:09d}" for i in range(2019, 2009, -1)
    ]
    assert (
        pks(
            cli("ledger", "list", "--json", "--all", "--pk-prefix", "r-0000020", "--key", "incoming/part-000001").stdout
        )
        == []
    )
    # AND a page with a key takes the newest of its items, whatever the page size
    assert pks(cli("ledger", "list", "--json", "--key", "incoming/part-000000", "--limit", "3").stdout) == [
        "r-000000999",
        "r-000000998",
        "r-000000997",
    ]
    assert pks(cli("ledger", "list", "--json", "--key", "incoming/part-000001", "--limit", "20000").stdout) == [
        f"r-{i:09d}" for i in range(1999, 999, -1)
    ]
    # AND --since takes an ISO time (items processed at or after it) ...
    since = pks(cli("ledger", "list", "--json", "--all", "--since", item_time(2995)).stdout)
    assert since == [f"r-{i:09d}" for i in range(2999, 2994, -1)]
    # ... and an age: everything here is weeks old, so nothing is from the last hour
    assert pks(cli("ledger", "list", "--json", "--since", "1h").stdout) == []
    assert len(pks(cli("ledger", "list", "--json", "--all", "--since", "3650d").stdout)) == 3000
    # AND a bad --since is one line
    bad = cli("ledger", "list", "--since", "yesterday", check=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith("dockline: error: --since 'yesterday': not a time")
    assert bad.stderr.count("\n") == 1


def test_item5_files_list_pages_newest_first_and_filters(cli: Cli) -> None:
    # GIVEN 60 files (60,000 items), one of them failed
    db = build_ledger(cli.data_dir, 60 * ITEMS_PER_FILE)  # type: ignore[attr-defined]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE files SET status = 'failed', error = 'bad line' WHERE key = 'incoming/part-000007.ndjson'")
    # WHEN files are listed
    keys = [f["key"] for f in json.loads(cli("files", "list", "--json").stdout)]
    # THEN the 50 received last come first
    assert keys == [f"incoming/part-{n:06d}.ndjson" for n in range(59, 9, -1)]
    # AND filters narrow them: state, key prefix, since
    failed = json.loads(cli("files", "list", "--json", "--status", "failed").stdout)
    assert [(f["key"], f["error"]) for f in failed] == [("incoming/part-000007.ndjson", "bad line")]
    assert len(json.loads(cli("files", "list", "--json", "--all", "--key", "incoming/part-00001").stdout)) == 10
    lines = cli("files", "list", "--ndjson", "--since", item_time(58 * ITEMS_PER_FILE)).stdout.splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["incoming/part-000059.ndjson", "incoming/part-000058.ndjson"]
    assert "the newest 50 files; there are more" in cli("files", "list").stdout


def test_item5_export_keeps_every_number_exact_in_ndjson_and_csv(cli: Cli, tmp_path: Path) -> None:
    # GIVEN items whose numbers no float can hold
    build_ledger(cli.data_dir, 2500, payload=EXACT)  # type: ignore[attr-defined]
    # WHEN exported as NDJSON (stdout) and CSV (--out)
    lines = cli("ledger", "export").stdout.splitlines()
    out = tmp_path / "ledger.csv"
    done = cli("ledger", "export", "--format", "csv", "--out", str(out))
    # THEN every item is there once, in pk order, numbers exact
    assert len(lines) == 2500
    first = json.loads(lines[0], parse_float=Decimal)
    assert first["pk"] == "r-000000000"
    assert first["payload"]["big"] == 123456789012345678901234567890
    assert first["payload"]["tiny"] == Decimal("0.10000000000000000000000001")
    assert first["processed_at"] == item_time(0)
    # AND the CSV has the documented columns, the payload as its exact canonical text
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert len(rows) == 2500
    assert list(rows[0]) == [
        "pk", "key", "bucket", "sha256", "record_index", "received_at", "processed_at", "content_hash", "payload",
        "payload_ref",
    ]  # fmt: skip
    assert {row["payload"] for row in rows} == {EXACT}
    assert rows[-1]["pk"] == "r-000002499"
    assert rows[-1]["record_index"] == "499"
    assert done.stderr == f"exported 2500 items to {out}\n"
    # AND the file reads as a plain copy would (the umask's mode), no temp file left
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_item5_export_out_is_one_line_for_a_bad_path_and_never_under_the_bucket(cli: Cli, tmp_path: Path) -> None:
    # GIVEN a ledger
    build_ledger(cli.data_dir, 10)  # type: ignore[attr-defined]
    bucket = cli.data_dir / "bucket"  # type: ignore[attr-defined]
    # WHEN --out names a place that cannot be (or must not be) written
    cases = {
        str(tmp_path / "missing" / "x.ndjson"): "does not exist",
        str(tmp_path): "it is a folder",
        str(bucket / "incoming" / "x.ndjson"): "inside the bucket",
        str(bucket / "x.csv"): "inside the bucket",
        str(cli.data_dir / "dockline.db"): "the ledger database",  # type: ignore[attr-defined]
        str(cli.data_dir / "dockline.db-wal"): "the ledger database",  # type: ignore[attr-defined]
    }
    for out, reason in cases.items():
        failed = cli("ledger", "export", "--out", out, check=False)
        # THEN it is one line, exit 2, and nothing was written
        assert failed.returncode == 2, failed.stderr
        assert failed.stderr.count("\n") == 1
        assert failed.stderr.startswith(f"dockline: error: cannot write {out}") and reason in failed.stderr
    assert sorted(str(p.relative_to(bucket)) for p in bucket.rglob("*")) == ["incoming"]
    assert len(cli("ledger", "export").stdout.splitlines()) == 10  # the database is whole
    # AND a bad --format is one line too
    fmt = cli("ledger", "export", "--format", "xml", check=False)
    assert (fmt.returncode, fmt.stderr) == (2, "dockline: error: --format 'xml': use ndjson or csv\n")


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_item5_export_out_is_whole_or_not_at_all_when_the_disk_fills(cli: Cli, small_disk: Path) -> None:
    # GIVEN an earlier export on a 2 MB disk, and a ledger whose export needs ~4 MB
    build_ledger(cli.data_dir, 12_000)  # type: ignore[attr-defined]
    out = small_disk / "ledger.ndjson"
    out.write_text("the earlier export\n")
    # WHEN exported there
    failed = cli("ledger", "export", "--out", str(out), check=False)
    # THEN one line says why, the earlier file is untouched and no temp file is left
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1
    assert failed.stderr.startswith(f"dockline: error: cannot write {out}: No space left on device")
    assert out.read_text() == "the earlier export\n"
    assert [p.name for p in small_disk.iterdir()] == ["ledger.ndjson"]


def test_item5_listing_and_export_never_wait_for_a_writer(cli: Cli) -> None:
    # GIVEN a writer in the middle of a write transaction (it holds SQLite's write lock)
    db = build_ledger(cli.data_dir, 100)  # type: ignore[attr-defined]
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE items SET processed_at = '2099-01-01T00:00:00.000Z' WHERE pk = 'r-000000000'")
    try:
        # WHEN the ledger is read
        listed = cli("ledger", "list", "--json", "--limit", "1")
        exported = cli("ledger", "export")
        files = cli("files", "list", "--json", "--all")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    # THEN the reads answer with the committed data (the pending write is not seen)
    assert pks(listed.stdout) == ["r-000000099"]
    assert len(exported.stdout.splitlines()) == 100
    assert len(json.loads(files.stdout)) == 1


def test_item5_export_shows_a_progress_bar_on_a_terminal_only(cli: Cli, tmp_path: Path) -> None:
    # GIVEN a ledger
    build_ledger(cli.data_dir, 5000)  # type: ignore[attr-defined]
    out = tmp_path / "x.ndjson"
    # WHEN exported with stderr on a terminal
    leader, follower = pty.openpty()
    argv = [sys.executable, "-m", "dockline", "--data-dir", str(cli.data_dir), "ledger", "export", "--out", str(out)]  # type: ignore[attr-defined]
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower, env=env) as proc:
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert proc.wait(timeout=60) == 0
    os.close(leader)
    # THEN the terminal saw a bar that reached 5000/5000
    screen = shown.decode(errors="replace")
    assert "exporting" in screen
    assert "5000/5000" in screen
    assert len(out.read_text().splitlines()) == 5000
    # AND piped, stderr has the summary line only
    piped = cli("ledger", "export", "--out", str(out))
    assert piped.stderr == f"exported 5000 items to {out}\n"


def test_item5_a_long_table_is_printed_in_parts_with_one_header(cli: Cli) -> None:
    # GIVEN 2,500 items
    build_ledger(cli.data_dir, 2500)  # type: ignore[attr-defined]
    # WHEN all of them are listed as a table
    table = cli("ledger", "list", "--all").stdout
    # THEN every item is shown once, newest first, under one header
    shown = [line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│")]
    assert shown == [f"r-{i:09d}" for i in range(2499, -1, -1)]
    assert table.count("┃ pk") == 1
    assert "ledger items, newest first" in table


def test_item5_a_reader_that_stops_early_ends_the_listing_quietly(cli: Cli) -> None:
    # GIVEN a ledger
    build_ledger(cli.data_dir, 20_000)  # type: ignore[attr-defined]
    argv = [sys.executable, "-m", "dockline", "--data-dir", str(cli.data_dir)]  # type: ignore[attr-defined]
    for args in (["ledger", "list", "--all", "--json"], ["ledger", "export"]):
        # WHEN its reader closes the pipe after the first bytes (like `| head -c 100`)
        with subprocess.Popen([*argv, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            first = proc.stdout.read(100)
            proc.stdout.close()
            code = proc.wait(timeout=60)
            stderr = proc.stderr.read()
        # THEN the command stops at once, exit 0, without a traceback
        assert first.startswith(b"[" if "list" in args else b"{")
        assert (code, stderr) == (0, b""), stderr
