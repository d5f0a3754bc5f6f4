"""The console on a data dir that `dockline run` is processing: reads never wait for the
run and see its work as it commits; a button takes the write lock in turn with it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.console.conftest import Console, Receiver, World, cli_env, drop, stop

FILES = 40
DEADLINE_SECONDS = 120.0


@pytest.mark.slow
def test_console_reads_and_acts_while_run_processes(
    world: World, receiver: Receiver, console: Callable[..., Console]
) -> None:
    # GIVEN `dockline run` watching the data dir, and the console on it
    where = ["--data-dir", str(world.data_dir), "--config", str(world.config)]
    run = subprocess.Popen(
        [sys.executable, "-m", "dockline", *where, "run", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=world.data_dir.parent,
        env=cli_env(),
    )
    try:
        served = console(world.data_dir, world.config)
        # WHEN files arrive while the console is asked for its status over and over
        for n in range(FILES):
            drop(world.data_dir, f"incoming/live-{n}.json", f'{{"id": "live-{n}"}}')
        answers: list[int] = []
        seen: list[int] = []
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            answer = served.get("/api/status")
            answers.append(answer.status)
            if answer.status != 200:
                break
            seen.append(answer.json()["files"]["processed"])
            if seen[-1] == 3 + FILES:
                break
            time.sleep(0.05)  # pacing the polls, not an assertion
        # THEN every read answered, the count only grew, and it reached every file
        assert set(answers) == {200}, answers
        assert seen == sorted(seen)
        assert seen[-1] == 3 + FILES, seen[-5:]
        # and a button works while the run holds the data dir open for writing
        receiver.answer = 204
        done = served.act("/api/notifications/1/redeliver")
        assert done.status == 200, done.body
        assert done.json()["due"] == 1
        assert run.poll() is None  # the run is still watching
    finally:
        stop(run)
    assert run.returncode == 0, run.stderr.read().decode() if run.stderr else ""
