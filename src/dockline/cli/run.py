"""put, run (with its signal handling and summaries) and demo."""

import gc
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from dockline.cli.app import (
    app,
    console,
    context_of,
    err,
)
from dockline.errors import UsageError
from dockline.models import Status
from dockline.render import say


# -- put / run -------------------------------------------------------------------------
@app.command()
def put(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The file to upload.")],
    key: Annotated[str | None, typer.Option("--key", help="Object key (default: <prefix><file name>).")] = None,
) -> None:
    """Upload FILE into the local bucket atomically (it is processed by `dockline run`)."""
    c = context_of(ctx)
    engine = c.engine()
    key = key or f"{engine.settings.pipeline.prefix}{file.name}"
    engine.store.put(file, key)
    note = (
        ""
        if engine.settings.pipeline.matches(key)
        else "  (note: the key does not match the trigger's prefix/suffix; it will not be processed)"
    )
    say(console, f"put {file} -> {key}{note}")


@app.command()
def run(
    ctx: typer.Context,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Process what is there now, then exit (0 even if files failed, unless --strict; 1 if a full"
            " disk or another process's lock stopped it).",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=64, help="Files processed in parallel (default: [local] concurrency)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print a line per notification.")] = False,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="With --once: exit 1 when any file failed (for cron and CI)."),
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve Prometheus metrics of the data dir at http://HOST:PORT/metrics while running"
            " (0: any free port).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="The address --metrics-port listens on.")
    ] = "127.0.0.1",
    progress_seconds: Annotated[
        float,
        typer.Option(
            "--progress-seconds",
            min=0.1,
            help="Watch mode: a progress line this often for each file still running after this long.",
        ),
    ] = 5.0,
) -> None:
    """Watch the bucket folder and process matching new files (Ctrl-C stops)."""
    from dockline.local.db import StorageError

    if strict and not once:
        raise UsageError("--strict needs --once (a watcher has no end to report on)")
    c = context_of(ctx)
    backoff = 1.0
    while True:
        try:
            engine = c.engine(echo=not quiet)
            break
        except StorageError as exc:
            if once:
                raise
            # A watcher outlives a full disk: it says so, backs off and tries again.
            say(err, f"not processing: {exc}; trying again in {backoff:g}s")
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
    # What exists now (modules, settings, the engine) lives as long as the process: frozen, the
    # collector stops walking it at every full collection. And a young collection waits for
    # 10,000 new containers, not 700: a small file's parse makes ~100, nearly all freed at once
    # by their count; cycles are still collected. GC in a 5,000-file run --once: ~40 ms in 256
    # collections before, ~4 ms in 3 (bench/small_stages.py).
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    server = _serve_metrics(engine, metrics_host, metrics_port) if metrics_port is not None else None
    try:
        _run(engine, once=once, workers=workers, quiet=quiet, strict=strict, progress_seconds=progress_seconds)
    finally:
        if server is not None:
            server.server_close()
        engine.db.close()  # the last sync, and a clean WAL for read-only users


def _serve_metrics(engine: Any, host: str, port: int) -> Any:
    from dockline.local.metrics import registry, serve

    server, bound = serve(registry(engine.data_dir, engine.settings), host=host, port=port)
    shown = f"[{host}]" if ":" in host else host
    say(err, f"metrics at http://{shown}:{bound}/metrics")
    return server


def _run(
    engine: Any, *, once: bool, workers: int | None, quiet: bool, strict: bool = False, progress_seconds: float = 5.0
) -> None:
    stopper = _Stopper(engine, once=once, strict=strict)
    stopper.install()
    if once and not err.is_terminal:  # no bar: rich.progress stays unloaded (start-up)
        stopper.finish(engine.run_once(workers=workers, stop=stopper.stop))
        return
    if once:
        summary = _run_once_with_bar(engine, workers=workers, stop=stopper.stop)
        stopper.finish(summary)
        return
    from dockline.local.progress import Reporter, settled_line

    routes = engine.settings.pipeline.table.routes
    watched = (
        f"{routes[0].prefix}* ({', '.join(routes[0].all_suffixes())})"
        if len(routes) == 1
        else f"{len(routes)} routes ({', '.join(f'{r.name}: {r.prefix}*' for r in routes)})"
    )
    say(err, f"watching {engine.bucket_dir} for {watched}; Ctrl-C to stop")
    # Long files say how far they got every few seconds; each settled file gets a line.
    Reporter(engine.board, lambda line: say(err, line), interval=progress_seconds, stop=stopper.stop).start()
    if not quiet:
        engine.board.subscribe(lambda outcome, seconds: say(err, settled_line(outcome, seconds)))
    engine.watch(
        workers=workers,
        stop=stopper.stop,
        on_summary=_print_problems,
        on_trouble=lambda line: say(err, f"not processing: {line}"),
    )
    stopper.finish(None)


def _run_once_with_bar(engine: Any, *, workers: int | None, stop: threading.Event) -> Any:
    """``run --once`` on a terminal: a bar in bytes (the sizes of the files the scan found),
    with rate and ETA, and the records and files done; nothing when stderr is not a terminal."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("processing"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[records]} records, {task.fields[files]} files"),
        console=err.rich,
        disable=not err.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("run", total=None, records="0", files="0/0")
        done = threading.Event()

        def follow() -> None:  # the board is fed by the workers; the bar reads it 5 times a second
            while True:
                t = engine.board.totals()
                bar.update(
                    task,
                    completed=t.bytes_done,
                    total=t.bytes_planned or None,
                    records=f"{t.records:,}",
                    files=f"{t.files_done}/{t.files_planned}",
                )
                if done.wait(0.2):
                    return

        follower = threading.Thread(target=follow, name="dockline-bar", daemon=True)
        if err.is_terminal:
            follower.start()
        try:
            return engine.run_once(workers=workers, stop=stop)
        finally:
            done.set()
            if follower.is_alive():
                follower.join()


class _Stopper:
    """SIGINT/SIGTERM: the first stops taking new files and gives the files in flight
    ``[local] stop_grace_seconds``, then releases them for the next run; a second stops at
    once. Either way it says how many files were finished and how many released. SIGTSTP
    (Ctrl-Z) first lets the unit being written commit, so a paused run holds no lock."""

    def __init__(self, engine: Any, *, once: bool, strict: bool = False) -> None:
        self.engine = engine
        self.once = once
        self.strict = strict
        self.stop = threading.Event()
        self.signum = 0
        self._exiting = threading.Lock()

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGTSTP, self._on_pause)

    def _on_pause(self, _signum: int, _frame: object) -> None:
        def pause() -> None:
            with self.engine.db.idle():  # no unit of ours runs, so no lock is held while stopped
                os.kill(os.getpid(), signal.SIGSTOP)

        threading.Thread(target=pause, name="dockline-pause", daemon=True).start()

    def _on_stop(self, signum: int, _frame: object) -> None:
        if self.stop.is_set():
            self._exit(
                f"stopped at once: {self.engine.finished} files finished, {self.engine.in_flight()} in flight"
                " left unfinished (the next run takes them at once)"
            )
        self.signum = signum
        self.stop.set()
        grace = self.engine.settings.local.stop_grace_seconds
        say(
            err,
            f"stopping: no new files; {self.engine.in_flight()} in flight get up to {grace:g}s"
            f" ({signal.Signals(signum).name} again stops at once)",
        )
        timer = threading.Timer(grace, self._expire)
        timer.daemon = True
        timer.start()

    def _expire(self) -> None:
        released = self.engine.release_in_flight()
        self._exit(f"stopped: {self.engine.finished} files finished, {released} released for the next run")

    def _exit(self, line: str) -> None:
        if not self._exiting.acquire(blocking=False):
            return
        say(err, line)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + (self.signum or signal.SIGTERM))  # worker threads may still be running: do not join them

    def finish(self, summary: Any) -> None:
        """The run ended on its own (or stopped within the grace period): report, pick the exit code."""
        if not self._exiting.acquire(blocking=False):
            threading.Event().wait()  # the grace timer is exiting the process
        if summary is not None:
            _print_summary(summary, strict=self.strict)
        if self.stop.is_set():
            say(err, f"stopped: {self.engine.finished} files finished, 0 released")
        if summary is not None and summary.trouble:
            raise typer.Exit(1)
        if self.once and self.stop.is_set():
            raise typer.Exit(128 + self.signum)
        if self.strict and summary is not None and summary.count(Status.FAILED):
            raise typer.Exit(1)


def _print_problems(summary: Any) -> None:
    for problem in summary.errors:
        if summary.trouble and summary.trouble in problem:
            continue  # said once, below
        say(err, f"not settled: {problem}")


def _print_summary(summary: Any, *, strict: bool = False) -> None:
    parts = [f"{summary.count(s)} {s}" for s in (Status.PROCESSED, Status.FAILED, Status.DUPLICATE, Status.CONFLICT)]
    if summary.count(Status.SUPERSEDED):  # a rare race: named only when it happened
        parts.append(f"{summary.count(Status.SUPERSEDED)} superseded")
    line = f"{summary.settled} files settled in {summary.seconds:.2f}s: " + ", ".join(parts)
    if summary.earlier:
        line += f"; {summary.earlier} settled meanwhile by another process"
    if summary.busy:
        line += f"; {summary.busy} held by another process"
    if summary.trouble:
        say(err, f"dockline: error: {summary.trouble} ({line}; the rest is left for the next run)")
        return
    failed = summary.count(Status.FAILED)
    if strict and failed:
        line += f"; exit 1 (--strict): {failed} file{'' if failed == 1 else 's'} failed"
    say(err, line)
    if summary.ignored:  # issue 9: a key no route takes is never silent
        files = f"{summary.ignored} file{'' if summary.ignored == 1 else 's'}"
        say(err, f"{files} matched no route: dockline files list --ignored")
    _print_problems(summary)


# -- demo ------------------------------------------------------------------------------
@app.command()
def demo(
    keep: Annotated[
        Path | None, typer.Option("--data-dir-out", help="Use this (new) folder instead of a temporary one.")
    ] = None,
) -> None:
    """Run the whole chain on bundled sample files in a fresh data dir and show what happened."""
    from dockline.demo import run_demo

    run_demo(console, target=keep)
