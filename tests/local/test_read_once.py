"""Issue 11, item 3: each file opened and hashed once.

The scan reads a small new file to version it (its version is its content's SHA-256) and
hands the bytes over to its reader (local/handover.py), which serves them after one
``lstat`` shows the file unchanged; otherwise the reader opens the file as before. Opens
are counted for real: ``strace`` on a ``dockline run --once`` subprocess, and inotify's
IN_OPEN on the bucket folder in-process.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import shutil
import sqlite3
import struct
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import pytest
from watchdog.observers.inotify_c import inotify_add_watch, inotify_init

from dockline.config import PipelineSettings
from dockline.decode import HashedBytes, RecordStream
from dockline.errors import SupersededError
from dockline.local.engine import LocalEngine
from dockline.local.handover import HandOver
from tests.local.conftest import cli_command, cli_env, drop, items, write_config

IN_OPEN = 0x00000020
SMALL = 20


@contextmanager
def opens_of(folder: Path) -> Iterator[Callable[[], Counter[str]]]:
    """An inotify watch on ``folder`` for IN_OPEN: how often each name in it was opened so far
    (by any process, through any path: the kernel reports the open of the inode's entry)."""
    fd = inotify_init()
    assert fd >= 0
    assert inotify_add_watch(fd, os.fsencode(folder), IN_OPEN) >= 0
    os.set_blocking(fd, False)
    seen: Counter[str] = Counter()

    def names() -> Counter[str]:
        while select.select([fd], [], [], 0.05)[0]:
            data = os.read(fd, 65536)
            offset = 0
            while offset < len(data):
                _wd, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
                if name:  # '' is the folder itself, which a scan opens to list it
                    seen[name] += 1
                offset += 16 + length
        return Counter(seen)

    try:
        yield names
    finally:
        os.close(fd)


def _order(n: int) -> bytes:
    return f'{{"id": "order-{n}", "total": {n}.5, "lines": [{{"sku": "s{n}", "qty": 2}}]}}'.encode()


def _dump(engine: LocalEngine) -> str:
    with sqlite3.connect(engine.data_dir / "dockline.db") as conn:
        return "\n".join(conn.iterdump())


def _bucket_with_small_files_and_a_big_one(data_dir: Path) -> Path:
    """20 small files and one NDJSON file over the hand-over's 1 MiB a file."""
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True)
    for n in range(SMALL):
        (incoming / f"order-{n}.json").write_bytes(_order(n))
    big = b"".join(b'{"id": "big-%d", "pad": "%s"}\n' % (n, b"x" * 200) for n in range(6000))
    assert len(big) > 1 << 20
    (incoming / "big.ndjson").write_bytes(big)
    return incoming


def _run_once(tmp_path: Path, data_dir: Path, prefix: list[str]) -> None:
    config = write_config(tmp_path / "dockline.toml")
    done = subprocess.run(
        prefix + cli_command(data_dir, "run", "--once", "--workers", "1", config=config),
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(data_dir / "dockline.db")
    statuses = dict(conn.execute("SELECT key, status FROM files").fetchall())
    conn.close()
    assert statuses == {f"incoming/order-{n}.json": "processed" for n in range(SMALL)} | {
        "incoming/big.ndjson": "processed"
    }


def _assert_small_once_big_twice(opened: Counter[str]) -> None:
    # each small file opened once (by the scan; ingest took its bytes), where the code at
    # 46f3795 opened each twice; the big one is still read again by ingest
    assert {name: opened[name] for name in opened if name.startswith("order-")} == {
        f"order-{n}.json": 1 for n in range(SMALL)
    }
    assert opened["big.ndjson"] == 2


def test_why3_each_small_file_is_opened_once_by_a_run(tmp_path: Path, data_dir: Path) -> None:
    # GIVEN 20 small files and a big one
    incoming = _bucket_with_small_files_and_a_big_one(data_dir)
    # WHEN a real `dockline run --once` processes them, the kernel reporting every open
    # in the folder (inotify IN_OPEN, whichever process and path opened it)
    with opens_of(incoming) as opens:
        _run_once(tmp_path, data_dir, [])
        opened = opens()
    # THEN every file was processed, and the small ones opened once
    _assert_small_once_big_twice(opened)


def test_why3_each_small_file_is_opened_once_under_strace(tmp_path: Path, data_dir: Path) -> None:
    # GIVEN the same bucket
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (apt-get install strace); the inotify test above counts the same opens")
    _bucket_with_small_files_and_a_big_one(data_dir)
    log = tmp_path / "strace.log"
    # WHEN `dockline run --once` runs under strace, every open of every thread and process logged
    _run_once(tmp_path, data_dir, [strace, "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(log)])
    # THEN each small file was opened once, by whichever call
    opened = Counter(
        match.group(1)
        for line in log.read_text().splitlines()
        if (match := re.search(r'open(?:at2?)?\((?:[^,]*, )?"(?:[^"]*/)?([^"/]+\.(?:json|ndjson))"', line))
        and "ENOENT" not in line
    )
    _assert_small_once_big_twice(opened)


def test_why3_handed_over_bytes_are_not_hashed_again_yet_carry_their_hash(engine: LocalEngine) -> None:
    # GIVEN a small file the scan has read and handed over
    content = _order(7)
    drop(engine, "incoming/a.json", content)
    [ref] = engine.scan().ready
    assert len(engine.store.handover) == 1
    with opens_of(engine.bucket_dir / "incoming") as opens:
        # WHEN it is processed
        outcome = engine.pipeline.process(ref)
        # THEN from the handed-over bytes (no open), with the hash of exactly those bytes
        assert opens() == Counter()
    assert outcome.status.value == "processed"
    assert outcome.sha256 == ref.version == hashlib.sha256(content).hexdigest()
    assert items(engine)["order-7"]["payload"]["total"] == 7.5
    assert len(engine.store.handover) == 0  # taken once


@pytest.mark.parametrize(
    ("change", "new_status"),
    [
        ("rewritten", "processed"),  # same size, new bytes
        ("truncated", "failed"),  # half a document: the new version fails on its own
        ("emptied", "failed"),
    ],
)
def test_why3_a_file_changed_between_scan_and_read_is_superseded_never_mixed(
    engine: LocalEngine, change: str, new_status: str
) -> None:
    # GIVEN a scanned small file, its bytes handed over
    old = b'{"id": "a", "v": "one"}'
    path = drop(engine, "incoming/a.json", old)
    [ref] = engine.scan().ready
    assert len(engine.store.handover) == 1
    # WHEN it changes before a worker reads it
    new = {"rewritten": b'{"id": "a", "v": "two"}', "truncated": old[:9], "emptied": b""}[change]
    assert change != "rewritten" or len(new) == len(old)
    path.write_bytes(new)
    outcome = engine.pipeline.process(ref)
    # THEN the scanned version is superseded, as when ingest read the disk again: neither
    # the old bytes nor the new ones are ledgered under it, and nobody is paged
    assert outcome.status.value == "superseded", outcome.error
    assert items(engine) == {}
    assert list(engine.dead_letters.list()) == []
    assert engine.topic.messages() == []
    # AND the next run settles the new content as its own version
    engine.run_once()
    conn = engine.db.connection()
    rows = dict(conn.execute("SELECT version, status FROM files WHERE key = 'incoming/a.json'").fetchall())
    assert rows == {ref.version: "superseded", hashlib.sha256(new).hexdigest(): new_status}
    if new_status == "processed":
        assert items(engine)["a"]["payload"]["v"] == "two"


def test_why3_a_file_deleted_between_scan_and_read_fails_as_gone(engine: LocalEngine) -> None:
    # GIVEN a scanned small file, its bytes handed over
    path = drop(engine, "incoming/a.json", _order(1))
    [ref] = engine.scan().ready
    assert len(engine.store.handover) == 1
    # WHEN it is deleted before a worker reads it
    path.unlink()
    outcome = engine.pipeline.process(ref)
    # THEN it fails as "object no longer exists", as before: the kept bytes are not used
    assert (outcome.status.value, outcome.error) == ("failed", "object no longer exists")
    assert items(engine) == {}


def test_why3_a_link_swapped_in_after_the_scan_is_never_followed(engine: LocalEngine, tmp_path: Path) -> None:
    # GIVEN a scanned small file, and a secret outside the bucket of the very same size
    path = drop(engine, "incoming/a.json", b'{"id": "a", "v": "public"}')
    secret = tmp_path / "outside" / "secret.json"
    secret.parent.mkdir()
    secret.write_bytes(b'{"id": "a", "v": "SECRET"}')
    [ref] = engine.scan().ready
    assert len(engine.store.handover) == 1
    # WHEN the file is swapped for a link to the secret before a worker reads it
    path.unlink()
    path.symlink_to(secret)
    with opens_of(secret.parent) as opens:
        outcome = engine.pipeline.process(ref)
        # THEN the secret is never opened, its content nowhere in the ledger, and the
        # version fails as a link, as before
        assert opens() == Counter()
    assert outcome.status.value == "failed"
    assert "symbolic link" in (outcome.error or "")
    assert "SECRET" not in _dump(engine)


def test_why3_a_folder_swapped_for_a_link_after_the_scan_is_never_read_through(
    engine: LocalEngine, tmp_path: Path
) -> None:
    # GIVEN a scanned small file in incoming/
    drop(engine, "incoming/a.json", b'{"id": "a", "v": "scanned"}')
    [ref] = engine.scan().ready
    incoming = engine.bucket_dir / "incoming"
    # WHEN incoming/ is moved out of the bucket and a link to it put in its place
    moved = tmp_path / "moved"
    incoming.rename(moved)
    incoming.symlink_to(moved)
    with opens_of(moved) as opens:
        outcome = engine.pipeline.process(ref)
        # THEN nothing is opened through the link: the version processed is the bytes the
        # scan read inside the bucket (the same file, unchanged, as one lstat showed)
        assert opens() == Counter()
    assert outcome.status.value == "processed"
    assert items(engine)["a"]["payload"]["v"] == "scanned"
    # AND a file put behind the link later is never read: the walk does not enter the link
    (moved / "b.json").write_bytes(b'{"id": "b", "v": "SECRET"}')
    engine.process(engine.scan().ready, workers=1)
    assert "SECRET" not in _dump(engine)


def test_why3_memory_stays_bounded_when_a_scan_finds_many_new_files(engine: LocalEngine) -> None:
    # GIVEN a hand-over of 40 KB in all, and 400 new files of ~90 bytes (~136 KB with bookkeeping)
    engine.store.handover = HandOver(max_bytes=40_000)
    for n in range(400):
        drop(engine, f"incoming/o-{n:03}.json", _order(n))
    with opens_of(engine.bucket_dir / "incoming") as opens:
        # WHEN one scan finds them all
        refs = engine.scan().ready
        handover = engine.store.handover
        kept = {ref.key for ref in refs if ref.key in handover}
        # THEN the bytes it keeps stay within the bound, the files beyond it are not kept
        assert len(refs) == 400
        assert 0 < len(kept) < 400
        assert handover.used <= 40_000
        # AND every file is processed: the kept ones without a second open, the rest read again
        summary = engine.process(refs, workers=2)
        assert [o.status.value for o in summary.outcomes].count("processed") == 400
        counts = opens()
    assert {counts[Path(key).name] for key in kept} == {1}
    assert {counts[f"o-{n:03}.json"] for n in range(400) if f"incoming/o-{n:03}.json" not in kept} == {2}
    assert len(handover) == 0 and handover.used == 0


def test_why3_bytes_nobody_will_read_are_dropped(engine: LocalEngine) -> None:
    # GIVEN a processed file, then a copy of it renamed over it (a new inode: the scan reads it
    # again) and a file whose bytes a scan kept but that was never processed
    drop(engine, "incoming/a.json", _order(1))
    engine.run_once()
    copy = engine.bucket_dir / "incoming" / ".a.json.tmp"
    copy.write_bytes(_order(1))
    copy.rename(engine.bucket_dir / "incoming" / "a.json")
    # WHEN a scan reads it: the same version, settled already
    result = engine.scan()
    # THEN nothing is left to read and no bytes are kept for it
    assert result.ready == []
    assert (len(engine.store.handover), engine.store.handover.used) == (0, 0)
    # AND bytes a scan kept for a file not processed yet are dropped by the next scan
    drop(engine, "incoming/b.json", _order(2))
    assert [r.key for r in engine.scan().ready] == ["incoming/b.json"]
    assert len(engine.store.handover) == 1
    (engine.bucket_dir / "incoming" / "b.json").unlink()
    assert engine.scan().ready == []
    assert (len(engine.store.handover), engine.store.handover.used) == (0, 0)


def test_why3_settled_versions_are_found_across_the_ledger_queries_chunks(engine: LocalEngine) -> None:
    # GIVEN 300 processed files (more than one query's 250), then each copied over itself
    # (new inodes: the scan reads them all again) and one of them with new content
    incoming = engine.bucket_dir / "incoming"
    for n in range(300):
        drop(engine, f"incoming/o-{n:03}.json", _order(n))
    assert [o.status.value for o in engine.run_once().outcomes] == ["processed"] * 300
    for n in range(300):
        copy = incoming / f".o-{n:03}.tmp"
        copy.write_bytes(_order(n) if n != 280 else _order(1000))
        copy.rename(incoming / f"o-{n:03}.json")
    # WHEN a scan looks them up
    ready = engine.scan().ready
    # THEN only the changed one is new; the 299 others are known settled, whichever query asked
    assert [ref.key for ref in ready] == ["incoming/o-280.json"]
    assert len(engine.store.handover) == 1 and "incoming/o-280.json" in engine.store.handover


def test_why3_record_stream_trusts_the_hash_taken_as_the_bytes_were_read() -> None:
    # GIVEN bytes handed over with the hash their reader took (here a stand-in, to tell
    # whether RecordStream hashes them again), and the same bytes from an ordinary stream
    data = b'{"id": "a"}'
    vouched = "ab" * 32
    settings = PipelineSettings()
    handed = RecordStream(
        HashedBytes(data, sha256=vouched), key="incoming/a.json", settings=settings, expected_sha256=vouched
    )
    plain = RecordStream(BytesIO(data), key="incoming/a.json", settings=settings, expected_sha256=vouched)
    # WHEN each is read
    records = list(handed.records())
    # THEN the handed-over bytes are not hashed again: the hash they came with is theirs
    assert [r.pk for r in records] == ["a"] and handed.sha256 == vouched
    # AND bytes from anywhere else are hashed and checked as before
    with pytest.raises(SupersededError):
        list(plain.records())
