"""`dockline put` cannot write outside the bucket (issue 8, Why 6; What to build 9).

A thread keeps moving the destination folder out of the bucket and putting a link to an
outside folder in its place, while `put` copies a large file. Whenever it hits, `put`
fails with one line; nothing ever lands outside the bucket.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from dockline.errors import UsageError
from dockline.local.store import FolderStore
from tests.local.conftest import run_cli

BIG = 64 * 1024 * 1024
ATTEMPTS = 8


def everything_below(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _swap_folder_for_link(stop: threading.Event, folder: Path, outside: Path, aside: Path) -> None:
    """Move ``folder`` out of the bucket, put a link to ``outside`` in its place, then a
    fresh folder; again and again. The moved-out folders pile up in ``aside``."""
    generation = 0
    while not stop.is_set():
        generation += 1
        try:
            folder.rename(aside / f"gen-{generation}")
            folder.symlink_to(outside, target_is_directory=True)
            time.sleep(0.01)
            folder.unlink()
            folder.mkdir()
        except FileNotFoundError:
            folder.mkdir(exist_ok=True)  # put made it meanwhile
        except FileExistsError:
            pass  # put made it between the unlink and the mkdir: the next round swaps it again
        time.sleep(0.01)


def _swap_once_the_copy_starts(done: threading.Event, folder: Path, outside: Path, aside: Path, staging: Path) -> None:
    """Wait until a put's temporary file exists (beside the target, or in the old
    staging folder), then swap the folder for a link until the put has ended."""
    while not done.is_set():
        if any(p.name.startswith(".put-") for where in (folder, staging) if where.is_dir() for p in where.iterdir()):
            break
        time.sleep(0.0005)
    else:
        return
    folder.rename(aside / f"moved-{time.monotonic_ns()}")
    folder.symlink_to(outside, target_is_directory=True)
    done.wait()
    folder.unlink()
    folder.mkdir()


@pytest.mark.slow
def test_why6_put_never_writes_outside_when_a_folder_is_swapped_for_a_link(tmp_path: Path, data_dir: Path) -> None:
    # GIVEN a large file to put, a bucket folder and an outside folder
    source = tmp_path / "big.json"
    with source.open("wb") as out:  # sparse: cheap to make, still 64 MB to copy
        out.write(b'{"id": "big", "pad": "')
        out.truncate(BIG)
        out.seek(BIG - 2)
        out.write(b'"}')
    outside, aside = tmp_path / "outside", tmp_path / "aside"
    outside.mkdir()
    aside.mkdir()
    folder = data_dir / "bucket" / "incoming" / "sub"
    folder.mkdir(parents=True)

    def put() -> subprocess.CompletedProcess[str]:
        return run_cli(data_dir, "put", str(source), "--key", "incoming/sub/big.json", timeout=120)

    # WHEN `dockline put` runs again and again, while a thread swaps the folder for a
    # link to the outside folder (moving the real one out): first right after each copy
    # starts, then at random moments, all the time
    targeted = []
    for _ in range(ATTEMPTS // 2):
        done = threading.Event()
        attacker = threading.Thread(
            target=_swap_once_the_copy_starts, args=(done, folder, outside, aside, data_dir / "tmp"), daemon=True
        )
        attacker.start()
        try:
            targeted.append(put())
        finally:
            done.set()
            attacker.join(timeout=10)
    stop = threading.Event()
    swapper = threading.Thread(target=_swap_folder_for_link, args=(stop, folder, outside, aside), daemon=True)
    swapper.start()
    try:
        anytime = [put() for _ in range(ATTEMPTS // 2)]
    finally:
        stop.set()
        swapper.join(timeout=10)
    # THEN nothing was ever written outside the bucket: not through the link, and not
    # into a folder moved out while put held it open
    assert everything_below(outside) == []
    assert [p for p in everything_below(aside) if p.startswith("moved-") and "/" in p] == []
    # AND every put that was hit failed with one line and no traceback
    assert all(done.returncode != 0 for done in targeted), [d.stderr for d in targeted]
    for done in targeted + anytime:
        if done.returncode == 0:
            continue
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert "link" in lines[0] or "moved or replaced" in lines[0], lines[0]
    # AND no temporary file was left behind, in the bucket or moved out of it
    assert [p for p in everything_below(data_dir / "bucket") + everything_below(aside) if ".put-" in p] == []


def test_put_replaces_a_link_at_the_key_and_leaves_its_target_alone(tmp_path: Path) -> None:
    # GIVEN a key that is a link to a file outside the bucket
    store = FolderStore(tmp_path / "bucket")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "bucket" / "incoming").mkdir(parents=True)
    (tmp_path / "bucket" / "incoming" / "x.json").symlink_to(victim)
    source = tmp_path / "doc.json"
    source.write_text('{"id": "doc"}')
    # WHEN a file is put at that key
    target = store.put(source, "incoming/x.json")
    # THEN the link is replaced by the file; the outside file is untouched
    assert not target.is_symlink() and target.read_text() == '{"id": "doc"}'
    assert victim.read_text() == "keep me"


def test_put_creates_missing_folders_and_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    # GIVEN an empty bucket, and a file where a folder would go
    store = FolderStore(tmp_path / "bucket")
    source = tmp_path / "doc.json"
    source.write_text('{"id": "doc"}')
    # WHEN a file is put under folders that do not exist yet
    target = store.put(source, "incoming/a/b/c.json")
    # THEN they are made, and the file is there whole, with no temporary file beside it
    assert target.read_text() == '{"id": "doc"}'
    assert sorted(p.name for p in target.parent.iterdir()) == ["c.json"]
    # AND a key through a file is refused with one line, writing nothing
    with pytest.raises(UsageError, match="not a folder"):
        store.put(source, "incoming/a/b/c.json/d.json")
    assert sorted(p.name for p in target.parent.iterdir()) == ["c.json"]


def test_put_of_a_fifo_or_folder_source_fails_at_once(tmp_path: Path) -> None:
    # GIVEN a FIFO nobody writes to (reading it would block forever) and a folder
    store = FolderStore(tmp_path / "bucket")
    os.mkfifo(tmp_path / "pipe.json")
    # WHEN either is put
    # THEN it is refused as not a readable file, without blocking
    for source in (tmp_path / "pipe.json", tmp_path):
        with pytest.raises(UsageError, match="not a readable file"):
            store.put(source, "incoming/x.json")
