"""The scan never stalls (issue 8, Why 1 and Why 5; What to build 2).

Each object is judged on its own: a name that cannot be a key settles that one object
as failed, and a link or FIFO swapped in at any moment is never followed nor blocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dockline.config import PipelineSettings
from dockline.errors import UsageError
from dockline.local.engine import LocalEngine
from dockline.local.names import check_key, from_printable, name_problems, printable
from dockline.local.scan import current_ref
from tests.local.conftest import (
    TRACEBACK_MARKERS,
    cli_command,
    cli_env,
    drop,
    files_by_key,
    letters,
    messages,
    run_cli,
    settings,
    the_file,
    write_config,
)
from tests.local.test_hostile_input import GOOD, GOOD_KEY, assert_failed_cleanly, assert_good_file_processed

LONG_FOLDERS = "/".join(["f" * 200] * 5)  # 1,005 bytes of folders: with a file name, over 1,024
# raw file name (bytes, below incoming/) -> (printable key, words the reason must hold)
BAD_NAMES: dict[bytes, tuple[str, tuple[str, ...]]] = {
    b"back\\slash.json": ("incoming/back\\\\slash.json", ("backslash",)),
    b"latin1-caf\xe9.json": ("incoming/latin1-caf\\xe9.json", ("not valid UTF-8",)),
    b"bad\xff\xfe.json": ("incoming/bad\\xff\\xfe.json", ("not valid UTF-8",)),
    b"bell\x07.json": ("incoming/bell\\x07.json", ("control character",)),
    b"esc\x1b[31mred.json": ("incoming/esc\\x1b[31mred.json", ("control character",)),
    b"new\nline.json": ("incoming/new\\x0aline.json", ("control character",)),
    "c1-\x85.json".encode(): ("incoming/c1-\\u0085.json", ("control character",)),
    LONG_FOLDERS.encode() + b"/" + b"x" * 20 + b".json": (
        f"incoming/{LONG_FOLDERS}/{'x' * 20}.json",
        ("longer than 1,024 bytes",),
    ),
    b"ends-with-space.json ": ("incoming/ends-with-space.json ", ("white space",)),
}


def drop_raw(engine: LocalEngine, name: bytes, data: bytes = b'{"id": "named"}') -> bytes:
    """Write a file whose name is raw bytes (what a hostile writer can choose)."""
    path = os.fsencode(engine.bucket_dir) + b"/incoming/" + name
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(data)
    return path


@pytest.fixture
def any_suffix_engine(make_engine: Callable[..., LocalEngine]) -> LocalEngine:
    """An engine on prefix incoming/ with no suffix filter (a name may end in a space)."""
    return make_engine(settings(pipeline=PipelineSettings(suffixes=("",))))


def test_why1_each_bad_name_fails_on_its_own_and_the_run_goes_on(any_suffix_engine: LocalEngine) -> None:
    # GIVEN files whose names cannot be keys, beside a good file
    engine = any_suffix_engine
    for name in BAD_NAMES:
        drop_raw(engine, name)
    drop(engine, GOOD_KEY, GOOD)
    # WHEN the engine runs once
    summary = engine.run_once(max_wait_seconds=5)
    # THEN nothing stops the run: every bad name settled as failed, under its printable
    # form, with a reason naming the problem, a notification and a dead letter
    assert summary.errors == []
    for shown, words in BAD_NAMES.values():
        assert_failed_cleanly(engine, shown, "cannot be an object key", *words)
    assert_good_file_processed(engine)
    assert len(files_by_key(engine)) == len(BAD_NAMES) + 1
    # AND a later run does not fail, nor settle them again
    again = engine.run_once(max_wait_seconds=5)
    assert again.errors == [] and again.outcomes == []
    assert len(letters(engine)) == len(BAD_NAMES)


def test_why1_a_bad_name_renamed_away_is_processed_and_never_fails_again(engine: LocalEngine) -> None:
    # GIVEN a file with a backslash in its name, settled as failed
    path = drop_raw(engine, b"oops\\name.json", b'{"id": "renamed"}')
    engine.run_once(max_wait_seconds=5)
    assert the_file(engine, "incoming/oops\\\\name.json")["status"] == "failed"
    # WHEN its owner renames it to a good name
    os.rename(path, os.fsencode(engine.bucket_dir / "incoming" / "renamed.json"))
    summary = engine.run_once(max_wait_seconds=5)
    # THEN the renamed file is processed, and no run fails over the old name
    assert summary.errors == []
    assert [o.status.value for o in summary.outcomes] == ["processed"]
    assert engine.run_once(max_wait_seconds=5).errors == []


def test_why1_bad_names_through_the_cli_exit_0_every_time(tmp_path: Path, data_dir: Path) -> None:
    # GIVEN a bucket with an invalid UTF-8 name, a backslash and an over-long key
    config = write_config(tmp_path / "dockline.toml")
    incoming = os.fsencode(data_dir / "bucket" / "incoming")
    os.makedirs(incoming + b"/" + LONG_FOLDERS.encode())
    for name in (b"bad\xff.json", b"a\\b.json", LONG_FOLDERS.encode() + b"/" + b"y" * 30 + b".json"):
        with open(incoming + b"/" + name, "wb") as out:
            out.write(b'{"id": "x"}')
    (data_dir / "bucket" / "incoming" / "good.json").write_text('{"id": "good"}')
    # WHEN `run --once` runs twice
    first = run_cli(data_dir, "run", "--once", config=config)
    second = run_cli(data_dir, "run", "--once", config=config)
    # THEN both exit 0 without a traceback, and the first settled all four
    for done in (first, second):
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr + done.stdout
    assert "1 processed, 3 failed" in first.stderr, first.stderr
    done = run_cli(data_dir, "files", "list", "--json", config=config)
    assert done.returncode == 0, done.stderr
    assert "bad\\\\xff.json" in done.stdout  # the printable key, JSON-escaped


def test_why1_a_watcher_does_not_exit_on_a_bad_name(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN a watching engine
    engine = make_engine(settings(poll_seconds=0.2))
    stop = threading.Event()
    watcher = threading.Thread(target=engine.watch, kwargs={"stop": stop}, daemon=True)
    watcher.start()
    try:
        # WHEN a file with invalid UTF-8 in its name lands, then a good file
        drop_raw(engine, b"w\xff.json")
        time.sleep(0.5)
        drop(engine, GOOD_KEY, GOOD)
        # THEN the watcher stays up: the bad one failed, the good one is processed
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(messages(engine)) < 2:
            time.sleep(0.1)
        assert watcher.is_alive()
        assert the_file(engine, "incoming/w\\xff.json")["status"] == "failed"
        assert_good_file_processed(engine)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()


@hypothesis_settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\x00" not in b and b[:1] != b"."))
def test_why1_a_printable_name_is_a_key_only_when_the_name_was_one(raw: bytes) -> None:
    # GIVEN any file name a writer can create
    name = os.fsdecode(raw)
    key = f"incoming/{name}"
    # WHEN it is judged
    problems = name_problems(key)
    shown = printable(key)
    # THEN the printable form leads back to the name
    assert from_printable(shown) == key
    # AND a good name is its own key; a bad one shows as something no good name can be
    if problems:
        with pytest.raises(UsageError):
            check_key(shown)
    else:
        assert shown == key and check_key(key) == key
    shown.encode("utf-8")  # no undecodable byte is left raw ...
    assert not [c for c in shown if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F]  # ... nor a control character


def test_why1_a_redrive_plan_sees_a_bad_name_again_without_failing(any_suffix_engine: LocalEngine) -> None:
    # GIVEN bad names settled as failed, listed under their printable keys
    engine = any_suffix_engine
    for name in BAD_NAMES:
        drop_raw(engine, name)
    engine.run_once(max_wait_seconds=5)
    failed = {letter.ref.key: letter.ref for letter in letters(engine)}
    assert set(failed) == {shown for shown, _words in BAD_NAMES.values()}
    # WHEN a redrive plan asks for each key's object as it is now
    # THEN it gets the same object version back, refused for the same reason
    for key, ref in failed.items():
        now = current_ref(engine.store, key)
        assert now is not None and (now.key, now.version) == (ref.key, ref.version), key
    # AND once renamed away, the key has no object any more
    renamed = os.fsencode(engine.bucket_dir / "incoming") + b"/bad\xff\xfe.json"
    os.rename(renamed, os.fsencode(engine.bucket_dir / "incoming" / "fixed.json"))
    assert current_ref(engine.store, "incoming/bad\\xff\\xfe.json") is None
    assert current_ref(engine.store, "incoming/fixed.json") is not None


def test_why1_redriving_bad_names_fails_each_letter_alone(any_suffix_engine: LocalEngine) -> None:
    # GIVEN bad names dead-lettered, and one good failed file fixed meanwhile
    engine = any_suffix_engine
    for name in BAD_NAMES:
        drop_raw(engine, name)
    drop_raw(engine, b"broken.json", b'{"id": "b", ')
    engine.run_once(max_wait_seconds=5)
    (engine.bucket_dir / "incoming" / "broken.json").write_bytes(b'{"id": "b"}')
    # WHEN every letter is redriven through the engine (plan, then execute)
    results = engine.redrive(engine.plan_redrive(None))
    # THEN the fixed file is processed and its letter gone; each bad name failed again, alone
    by_key = {step.letter.ref.key: outcome for step, outcome in results}
    assert by_key["incoming/broken.json"] is not None and by_key["incoming/broken.json"].status.value == "processed"
    bad = {shown for shown, _words in BAD_NAMES.values()}
    assert all(by_key[key] is not None and by_key[key].status.value == "failed" for key in bad)  # type: ignore[union-attr]
    assert {letter.ref.key for letter in letters(engine)} == bad


# -- links and FIFOs swapped in while the scan runs ----------------------------------------
def _swap_until(stop: threading.Event, target: Path, replacements: list[Path]) -> int:
    """Rename each replacement over ``target`` in turn until stopped; returns the swaps made."""
    swaps = 0
    while not stop.is_set():
        for replacement in replacements:
            staged = replacement.with_name(replacement.name + ".swap")
            if replacement.is_symlink():
                staged.unlink(missing_ok=True)
                staged.symlink_to(os.readlink(replacement))
            elif replacement.is_fifo():
                staged.unlink(missing_ok=True)
                os.mkfifo(staged)
            else:
                staged.write_bytes(replacement.read_bytes())
            staged.rename(target)
            swaps += 1
    return swaps


@pytest.fixture
def swapper() -> Iterator[object]:
    threads: list[tuple[threading.Thread, threading.Event]] = []

    def start(target: Path, replacements: list[Path]) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(target=_swap_until, args=(stop, target, replacements), daemon=True)
        thread.start()
        threads.append((thread, stop))
        return stop

    yield start
    for thread, stop in threads:
        stop.set()
        thread.join(timeout=10)


def test_why5_a_file_swapped_for_a_link_to_a_secret_is_never_hashed(
    engine: LocalEngine, tmp_path: Path, swapper: object
) -> None:
    # GIVEN a secret file outside the bucket, and a key that flips between a real file
    # and a link to the secret, again and again
    secret = tmp_path / "outside" / "secret.json"
    secret.parent.mkdir()
    secret.write_text('{"id": "secret", "password": "hunter2"}')
    secret_hash = hashlib.sha256(secret.read_bytes()).hexdigest()
    spares = tmp_path / "spares"
    spares.mkdir()
    (spares / "real.json").write_text('{"id": "real"}')
    (spares / "link.json").symlink_to(secret)
    target = drop(engine, "incoming/flip.json", '{"id": "real"}')
    stop = swapper(target, [spares / "link.json", spares / "real.json"])  # type: ignore[operator]
    # WHEN the engine scans and processes for a while
    deadline = time.monotonic() + 3
    scans = 0
    while time.monotonic() < deadline:
        engine.process(engine.scan().ready, workers=1)
        scans += 1
    stop.set()
    # THEN the secret's content was never read: its hash is nowhere in the database
    dump = _dump(engine)
    assert scans > 10
    assert secret_hash not in dump
    assert "hunter2" not in dump


def _dump(engine: LocalEngine) -> str:
    with sqlite3.connect(engine.data_dir / "dockline.db") as conn:
        return "\n".join(conn.iterdump())


@pytest.mark.slow
def test_why5_a_file_swapped_for_a_fifo_never_blocks_the_watcher(
    tmp_path: Path, data_dir: Path, swapper: object
) -> None:
    # GIVEN `dockline run` watching, and a key that flips between a file and a FIFO
    config = write_config(tmp_path / "dockline.toml", "poll_seconds = 0.1\n")
    incoming = data_dir / "bucket" / "incoming"
    incoming.mkdir(parents=True)
    target = incoming / "flip.json"
    target.write_text('{"id": "flip"}')
    spares = tmp_path / "spares"
    spares.mkdir()
    (spares / "real.json").write_text('{"id": "flip"}')
    os.mkfifo(spares / "fifo.json")
    proc = subprocess.Popen(
        cli_command(data_dir, "run", config=config),
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Read its stderr as it comes: a watcher woken by inotify settles a version per swap,
    # each with a line, and a pipe nobody reads would stop it at 64 KB (not what is tested).
    said: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: said.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        stop = swapper(target, [spares / "fifo.json", spares / "real.json"])  # type: ignore[operator]
        # WHEN the swaps go on for a while, then stop on a FIFO (the worst case)
        time.sleep(4)
        stop.set()
        time.sleep(0.2)
        target.unlink()
        os.mkfifo(target)
        (incoming / "after.json").write_text('{"id": "after"}')
        time.sleep(1.5)
        # THEN the watcher still answers SIGTERM promptly
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = "".join(said)
    assert proc.returncode == 0, stderr[-3000:]
    for marker in TRACEBACK_MARKERS[:2]:
        assert marker not in stderr
    files = {f["key"]: f["status"] for f in _files(data_dir)}
    assert files.get("incoming/after.json") == "processed"


def _files(data_dir: Path) -> list[dict[str, str]]:
    done = run_cli(data_dir, "files", "list", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_why1_a_folder_too_deep_to_hold_a_key_fails_once_as_a_whole(engine: LocalEngine) -> None:
    # GIVEN folders nested beyond 1,024 bytes of key, with files at the bottom
    deep = engine.bucket_dir / "incoming" / Path(*["d" * 250] * 5)
    deep.mkdir(parents=True)
    for n in range(3):
        (deep / f"{n}.json").write_text('{"id": "deep"}')
    drop(engine, GOOD_KEY, GOOD)
    # WHEN the engine runs
    summary = engine.run_once(max_wait_seconds=5)
    # THEN the folder that first passes the limit fails once, with the reason; the rest goes on
    assert summary.errors == []
    failed = [key for key, rows in files_by_key(engine).items() if rows[0]["status"] == "failed"]
    assert failed == [f"incoming/{'/'.join(['d' * 250] * 5)}/"], [len(k) for k in failed]
    assert_failed_cleanly(engine, failed[0], "longer than 1,024 bytes")
    assert_good_file_processed(engine)


def test_the_walk_holds_one_descriptor_per_level_not_per_folder(engine: LocalEngine) -> None:
    # GIVEN more sibling folders than the descriptors the process may open
    for n in range(300):
        drop(engine, f"incoming/f{n:03d}/x.json", {"id": f"x{n}"})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # WHEN the bucket is scanned with 64 descriptors to spare (counted from what this test
    # process holds already: earlier tests in the same worker keep some open)
    spare = len(os.listdir("/proc/self/fd")) + 64
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(spare, hard), hard))
    try:
        result = engine.scan()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # THEN every file is found
    assert len(result.ready) == 300


# -- issue 11: the event time of a file, from its mtime, without a datetime per file ---------
@given(st.integers(min_value=-2_000_000_000 * 10**9, max_value=12_000_000_000 * 10**9))
def test_event_time_is_the_mtime_truncated_to_the_millisecond(mtime_ns: int) -> None:
    from dockline.local.store import event_time

    seconds, nanos = divmod(mtime_ns, 10**9)
    whole = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert event_time(mtime_ns) == f"{whole}.{nanos // 10**6:03d}Z"
    assert event_time(mtime_ns + 10**9) != event_time(mtime_ns)  # the one-second cache moves on


def test_event_time_of_a_real_file_is_what_the_ledger_records(tmp_path: Path) -> None:
    # GIVEN a file whose mtime ends in .999999999 s (a float's rounding would say the next second)
    from dockline.local.store import event_time

    path = tmp_path / "a.json"
    path.write_text("{}")
    os.utime(path, ns=(1_764_547_199_999_999_999, 1_764_547_199_999_999_999))
    # THEN its event time is that second's last millisecond
    assert event_time(path.stat().st_mtime_ns) == "2025-11-30T23:59:59.999Z"
