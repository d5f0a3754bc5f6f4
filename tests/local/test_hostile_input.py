"""Hostile input on the local engine (issue 4, section 7).

Every hostile file ends as ``failed`` with a clear one-line reason, a failure
notification, a dead letter, and the run carries on with the good file beside it.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dockline.config import PipelineSettings
from dockline.errors import UsageError
from dockline.local.engine import LocalEngine, RunSummary
from dockline.local.store import FolderStore, check_key
from tests.local.conftest import (
    assert_one_line_reason,
    cli_json,
    drop,
    files_by_key,
    items,
    letters,
    messages,
    run_cli,
    settings,
    the_file,
    write_config,
)

GOOD_KEY = "incoming/good.json"
GOOD = {"id": "good-1", "amount": "10.00"}

# name -> (bytes, words the reason must contain)
HOSTILE: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "empty": (b"", ("empty",)),
    "blank": (b"  \n\t \r\n  ", ("blank", "whitespace")),
    "truncated": (b'{"id": "t-1", "items": [1, 2', ("truncated",)),
    "trailing-garbage": (b'{"id": "t-2"} and then some', ("trailing data",)),
    "invalid-utf8": (b'{"id": "caf\xe9"}', ("not valid UTF-8", "0xe9")),
    "binary": (bytes(range(256)) * 16, ("binary",)),
    "nested-arrays": (b"[" * 100_000 + b"]" * 100_000, ("nesting", "too deep")),
    "nested-objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, ("nesting", "too deep")),
    "nested-unclosed": (b'{"a":' * 100_000, ("nesting", "too deep")),
    "nan": (b'{"id": "n-1", "v": NaN}', ("NaN", "finite")),
    "infinity": (b'{"id": "i-1", "v": Infinity}', ("Infinity", "finite")),
    "minus-infinity": (b'{"id": "i-2", "v": -Infinity}', ("-Infinity", "finite")),
    "top-level-array": (b'[{"id": "a-1"}, {"id": "a-2"}]', ("array", "not a JSON object")),
    "top-level-number": (b"42", ("number", "not a JSON object")),
    "top-level-string": (b'"just text"', ("string", "not a JSON object")),
    "top-level-null": (b"null", ("null", "not a JSON object")),
    "id-bool": (b'{"id": true}', ("id", "bool")),
    "id-float": (b'{"id": 1.5}', ("id", "must be a non-empty string or an integer")),
    "id-null": (b'{"id": null}', ("id", "null")),
    "id-object": (b'{"id": {"n": 1}}', ("id", "object")),
    "id-array": (b'{"id": [1]}', ("id", "array")),
    "id-empty": (b'{"id": ""}', ("id is empty",)),
    "id-too-long": (json.dumps({"id": "x" * 1025}).encode(), ("1,025 bytes", "1,024")),
    "id-too-long-multibyte": (json.dumps({"id": "é" * 513}, ensure_ascii=False).encode(), ("1,026 bytes",)),
}


def assert_failed_cleanly(engine: LocalEngine, key: str, *words: str) -> str:
    """THEN: failed with a one-line reason, one failure notification, one dead letter."""
    row = the_file(engine, key)
    assert row["status"] == "failed"
    assert_one_line_reason(row["error"], *words)
    notes = messages(engine, key)
    assert len(notes) == 1, notes
    assert notes[0]["subject"] == "S3 Event Failed"
    assert notes[0]["attributes"]["status"] == "failed"
    assert key in notes[0]["message"] and row["error"] in notes[0]["message"]
    dead = letters(engine, key)
    assert len(dead) == 1, dead
    assert dead[0].reason == row["error"]
    assert dead[0].attempts >= 1
    return str(row["error"])


def assert_good_file_processed(engine: LocalEngine) -> None:
    assert the_file(engine, GOOD_KEY)["status"] == "processed"
    assert items(engine)["good-1"]["payload"] == GOOD
    assert [m["subject"] for m in messages(engine, GOOD_KEY)] == ["S3 Event Processed"]


def run_with_deadline(engine: LocalEngine, seconds: float, **kwargs: Any) -> RunSummary:
    """run_once in a daemon thread, so a hang fails the test instead of stalling the suite."""
    result: list[RunSummary] = []
    worker = threading.Thread(target=lambda: result.append(engine.run_once(**kwargs)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"run_once did not finish within {seconds}s"
    return result[0]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_document_fails_with_a_clear_reason_and_the_run_carries_on(engine: LocalEngine, name: str) -> None:
    # GIVEN a hostile file beside a good one
    data, words = HOSTILE[name]
    key = f"incoming/{name}.json"
    drop(engine, key, data)
    drop(engine, GOOD_KEY, GOOD)
    # WHEN the engine runs once
    summary = run_with_deadline(engine, 20)
    # THEN the hostile file failed cleanly and the good one was processed
    assert summary.errors == []
    assert_failed_cleanly(engine, key, *words)
    assert_good_file_processed(engine)
    assert set(items(engine)) == {"good-1"}


def test_every_hostile_file_in_one_run_settles_and_none_is_retried(engine: LocalEngine) -> None:
    # GIVEN all hostile files at once, with two workers
    for name, (data, _words) in HOSTILE.items():
        drop(engine, f"incoming/{name}.json", data)
    drop(engine, GOOD_KEY, GOOD)
    # WHEN the engine runs once, twice
    run_with_deadline(engine, 30, workers=2)
    run_with_deadline(engine, 30, workers=2)
    # THEN each failed once: permanent errors are not retried, the second run does nothing
    for name, (_data, words) in HOSTILE.items():
        key = f"incoming/{name}.json"
        assert_failed_cleanly(engine, key, *words)
        assert the_file(engine, key)["attempts"] == 1
    assert_good_file_processed(engine)


def test_integers_beyond_38_digits_are_kept_exact(engine: LocalEngine) -> None:
    # GIVEN integers DynamoDB could not hold (more than 38 digits), and an exact decimal
    big = 10**45 + 7
    text = f'{{"id": "big-1", "n": {big}, "neg": -{big}, "d": 1.100000000000000000000000000000000000000001}}'
    drop(engine, "incoming/big.json", text)
    # WHEN the engine runs
    engine.run_once()
    # THEN locally the file is processed and every digit is kept
    assert the_file(engine, "incoming/big.json")["status"] == "processed"
    payload = items(engine)["big-1"]["payload"]
    assert payload["n"] == big and payload["neg"] == -big
    assert str(payload["d"]) == "1.100000000000000000000000000000000000000001"


def test_document_over_the_maximum_size_fails(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN a limit of 1,000 bytes and a valid document of 2,000 bytes
    engine = make_engine(settings(pipeline=PipelineSettings(max_object_bytes=1_000)))
    drop(engine, "incoming/big.json", {"id": "too-big", "pad": "x" * 2_000})
    drop(engine, GOOD_KEY, GOOD)
    # WHEN the engine runs
    engine.run_once()
    # THEN it failed, naming the limit, and the good file went through
    assert_failed_cleanly(engine, "incoming/big.json", "larger than the maximum", "1,000 bytes")
    assert_good_file_processed(engine)


def test_a_huge_file_is_refused_without_reading_it(make_engine: Callable[..., LocalEngine], data_dir: Path) -> None:
    # GIVEN a 64 GiB (sparse) file and a limit of 1 MB: reading or hashing it would take minutes
    engine = make_engine(settings(pipeline=PipelineSettings(max_object_bytes=1_000_000)))
    huge = drop(engine, "incoming/huge.json", b"")
    with huge.open("r+b") as handle:
        handle.truncate(64 * 2**30)
    drop(engine, GOOD_KEY, GOOD)
    # WHEN the engine runs
    started = time.monotonic()
    run_with_deadline(engine, 20)
    # THEN it fails at once, by its size
    assert time.monotonic() - started < 5
    assert_failed_cleanly(engine, "incoming/huge.json", "larger than the maximum", "1,000,000 bytes")
    assert_good_file_processed(engine)


def test_gzip_bomb_stops_at_the_decompressed_limit(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN a 1 MB limit and a ~30 KB .json.gz that inflates to 30 MB
    engine = make_engine(settings(pipeline=PipelineSettings(max_object_bytes=1_000_000)))
    bomb = gzip.compress(b'{"id": "bomb", "pad": "' + b" " * 30_000_000 + b'"}', compresslevel=9)
    assert len(bomb) < 1_000_000
    drop(engine, "incoming/bomb.json.gz", bomb)
    drop(engine, GOOD_KEY, GOOD)
    # WHEN the engine runs
    run_with_deadline(engine, 20)
    # THEN it failed on the decompressed size
    assert_failed_cleanly(engine, "incoming/bomb.json.gz", "decompressed content", "larger than the maximum")
    assert_good_file_processed(engine)


def test_symlinks_are_never_followed(engine: LocalEngine, tmp_path: Path) -> None:
    # GIVEN a link to a file outside the bucket, a link to a file inside it,
    # and a linked folder outside the bucket
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"id": "secret"}')
    (outside / "x.json").write_text('{"id": "from-linked-folder"}')
    drop(engine, GOOD_KEY, GOOD)
    incoming = engine.bucket_dir / "incoming"
    (incoming / "to-outside.json").symlink_to(outside / "secret.json")
    (incoming / "to-inside.json").symlink_to(incoming / "good.json")
    (incoming / "linked").symlink_to(outside, target_is_directory=True)
    # WHEN the engine runs
    engine.run_once()
    # THEN both file links failed and nothing outside the bucket was read
    assert_failed_cleanly(engine, "incoming/to-outside.json", "symbolic link")
    assert_failed_cleanly(engine, "incoming/to-inside.json", "symbolic link")
    assert not [k for k in files_by_key(engine) if k.startswith("incoming/linked/")]
    assert set(items(engine)) == {"good-1"}
    assert_good_file_processed(engine)


def test_fifo_does_not_hang_the_run(engine: LocalEngine) -> None:
    # GIVEN a FIFO named like a JSON file (opening it for reading would block forever)
    incoming = engine.bucket_dir / "incoming"
    incoming.mkdir(exist_ok=True)  # the engine makes incoming/ (issue 10)
    os.mkfifo(incoming / "x.json")
    drop(engine, GOOD_KEY, GOOD)
    # WHEN the engine runs
    run_with_deadline(engine, 20)
    # THEN the FIFO failed as not a regular file
    assert_failed_cleanly(engine, "incoming/x.json", "not a regular file")
    assert_good_file_processed(engine)


# An unreadable file or folder: tests/local/test_permissions.py runs dockline as a non-root
# user (this suite runs as root in CI, where root can read any file).


def test_a_folder_named_like_a_json_file_is_not_an_object(engine: LocalEngine) -> None:
    # GIVEN a folder called incoming/folder.json holding a good file
    drop(engine, "incoming/folder.json/inner.json", {"id": "inner"})
    # WHEN the engine runs
    engine.run_once()
    # THEN the file inside is an object with a nested key; the folder itself is not
    assert the_file(engine, "incoming/folder.json/inner.json")["status"] == "processed"
    assert "incoming/folder.json" not in files_by_key(engine)


def test_a_file_dated_in_the_future_is_processed_not_waited_for(engine: LocalEngine) -> None:
    # GIVEN a file whose mtime is a year ahead (a skewed clock, touch -d, cp -p from elsewhere)
    path = drop(engine, "incoming/future.json", {"id": "future"})
    ahead = time.time() + 365 * 86400
    os.utime(path, (ahead, ahead))
    # WHEN the engine runs
    summary = run_with_deadline(engine, 20, max_wait_seconds=5)
    # THEN it is processed now, not left as "still being written"
    assert summary.errors == []
    assert the_file(engine, "incoming/future.json")["status"] == "processed"


# -- keys that escape the bucket ---------------------------------------------------------
@pytest.mark.parametrize("key", ["../x.json", "incoming/../../x.json", "ABSOLUTE", "incoming/./x.json"])
def test_put_refuses_keys_that_escape_the_bucket(tmp_path: Path, data_dir: Path, key: str) -> None:
    # GIVEN a file to upload and a key that would land outside the bucket
    source = tmp_path / "doc.json"
    source.write_text('{"id": "escape"}')
    if key == "ABSOLUTE":
        key = str(tmp_path / "abs.json")
    # WHEN it is put
    done = run_cli(data_dir, "put", str(source), "--key", key)
    # THEN: a one-line error, exit code 2, nothing written anywhere
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid key" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (data_dir / "x.json").exists() and not (tmp_path / "x.json").exists()
    assert not (tmp_path / "abs.json").exists()
    bucket = data_dir / "bucket"
    assert not bucket.exists() or not [p for p in bucket.rglob("*") if p.is_file()]


def test_put_refuses_a_key_through_a_linked_folder(tmp_path: Path, data_dir: Path) -> None:
    # GIVEN a folder in the bucket that is a link to a folder outside it
    outside = tmp_path / "outside"
    outside.mkdir()
    (data_dir / "bucket" / "incoming").mkdir(parents=True)
    (data_dir / "bucket" / "incoming" / "linked").symlink_to(outside, target_is_directory=True)
    source = tmp_path / "doc.json"
    source.write_text('{"id": "escape"}')
    # WHEN a file is put below the link
    done = run_cli(data_dir, "put", str(source), "--key", "incoming/linked/x.json")
    # THEN it is refused and nothing lands outside the bucket
    assert done.returncode == 2, done
    assert len(done.stderr.strip().splitlines()) == 1 and "link" in done.stderr, done.stderr
    assert list(outside.iterdir()) == []


def test_store_refuses_escaping_keys_in_process(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "bucket")
    for key in ("../x.json", "/abs.json", "a/../../x.json", "a\\..\\x.json", "", "a/", "x\x00.json"):
        with pytest.raises(UsageError):
            store.path_for(key)


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["..", ".", "", "a", "b.json", "/", "\\", "~", "é", " x"]), max_size=6))
def test_any_accepted_key_stays_inside_the_bucket(parts: list[str]) -> None:
    # GIVEN any key built from path-like pieces
    key = "/".join(parts)
    root = Path("/bucket-root")
    try:
        check_key(key)
    except UsageError:
        return  # refused: fine
    # THEN an accepted key resolves below the root, without leaving it on the way
    path = FolderStore(root).path_for(key)
    assert os.path.normpath(path) == str(path)
    assert path.is_relative_to(root) and path != root


# -- end to end through the CLI ----------------------------------------------------------
def test_hostile_files_through_the_cli(tmp_path: Path, data_dir: Path) -> None:
    # GIVEN a few hostile files and a good one, put with the CLI
    config = write_config(tmp_path / "dockline.toml")
    sources = {
        "truncated.json": HOSTILE["truncated"][0],
        "nan.json": HOSTILE["nan"][0],
        "deep.json": HOSTILE["nested-arrays"][0],
        "bigint.json": b'{"id": "bigint", "n": 123456789012345678901234567890123456789012345678901234567890}',
        "good.json": json.dumps(GOOD).encode(),
    }
    for name, data in sources.items():
        (tmp_path / name).write_bytes(data)
        assert run_cli(data_dir, "put", str(tmp_path / name), config=config).returncode == 0
    # WHEN run --once
    done = run_cli(data_dir, "run", "--once", "--workers", "2", config=config)
    # THEN it exits 0 without a traceback, failures are explained, the big integer is exact
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    failed = {row["key"]: row["error"] for row in cli_json(data_dir, "files", "list", "--all", "--status", "failed")}
    assert set(failed) == {"incoming/truncated.json", "incoming/nan.json", "incoming/deep.json"}
    assert_one_line_reason(failed["incoming/truncated.json"], "truncated")
    assert_one_line_reason(failed["incoming/nan.json"], "NaN")
    assert_one_line_reason(failed["incoming/deep.json"], "too deep")
    dlq = cli_json(data_dir, "dlq", "list")
    assert {letter["key"] for letter in dlq} == set(failed)
    notes = cli_json(data_dir, "notifications", "list")
    assert sorted(n["attributes"]["status"] for n in notes) == ["failed"] * 3 + ["processed"] * 2
    got = run_cli(data_dir, "ledger", "get", "bigint", "--json")
    assert '"n": 123456789012345678901234567890123456789012345678901234567890' in got.stdout
    assert json.loads(got.stdout)["payload"]["n"] == 123456789012345678901234567890123456789012345678901234567890
