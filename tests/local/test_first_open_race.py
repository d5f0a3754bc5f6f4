"""Processes that open a new data dir at the same moment all start.

Switching a new SQLite file to WAL takes a lock SQLite does not wait for ("database is
locked" at once): two `dockline run --once` started together on a new data dir (a timer and
a person, two terminals) made one of them fail about one time in twenty.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from tests.local._procs import dockline

_CTX = multiprocessing.get_context("spawn")  # real processes, as two commands are


def _open(path: str, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from dockline.local.db import Database  # imported before the barrier: the opens line up

    barrier.wait()
    try:
        Database(Path(path)).close()
    except Exception as exc:  # reported to the test, which names it
        errors.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_ledger_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    errors: multiprocessing.Queue = _CTX.Queue()  # type: ignore[type-arg]
    for round_ in range(20):
        # GIVEN four processes released together onto a ledger that does not exist yet
        path = tmp_path / f"ledger-{round_}.db"
        barrier = _CTX.Barrier(4)
        procs = [_CTX.Process(target=_open, args=(str(path), barrier, errors)) for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
    # THEN every one of them opened it
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found


def test_two_runs_started_together_on_a_new_data_dir_both_finish(tmp_path: Path) -> None:
    # GIVEN a new data dir and two `run --once` started at once on it
    data_dir = tmp_path / "data"
    procs = [dockline(data_dir, "run", "--once", "--quiet") for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    # THEN both finish (exit 0)
    assert [p.returncode for p in procs] == [0, 0], outs
