"""dockline status: one look, --watch, --json and --check."""

import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from dockline.cli.app import (
    app,
    console,
    context_of,
    print_json,
)
from dockline.errors import DocklineError, UsageError
from dockline.jsonx import dumps
from dockline.render import say

# -- status ----------------------------------------------------------------------------
STATUS_REFRESH_SECONDS = 2.0


@app.command("status")
def status_command(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object (keys in the README); with --watch, one per line.")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh every 2 s until Ctrl-C (one line per refresh when piped).")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Health check: exit 1, saying why in one line each, when files failed, dead letters wait,"
            " deliveries failed, or the oldest waiting file is older than --max-backlog-age; else 0.",
        ),
    ] = False,
    max_backlog_age: Annotated[
        float,
        typer.Option(
            "--max-backlog-age", min=0, metavar="SECONDS", help="How long a file may wait before --check fails."
        ),
    ] = 900.0,
    aws: Annotated[
        bool,
        typer.Option(
            "--aws",
            help="The deployed stack instead: input queue depth and oldest age, dead letters, files by state"
            " (a Scan of the table), the function's CloudWatch metrics.",
        ),
    ] = False,
    skip_scan: Annotated[
        bool, typer.Option("--skip-scan", help="With --aws: no counts by state (the Scan reads the whole table).")
    ] = False,
) -> None:
    """What the local pipeline is doing: files by state, the backlog and its oldest file, files and records
    per second (1, 5, 15 min), files in flight, deliveries, dead letters, the last error. Read-only: safe
    while `dockline run` works. With --aws, the same picture for the deployed stack."""
    from dockline.local.status import read_status

    if watch and check:
        raise UsageError("--check is one look for cron and health checks; it cannot be combined with --watch")
    if aws:
        from dockline.cli.aws_common import status_aws

        settings = context_of(ctx).settings()
        status_aws(
            settings, as_json=as_json, watch=watch, check=check, scan=not skip_scan, max_backlog_age=max_backlog_age
        )
        return
    try:
        engine = context_of(ctx).engine(read_only=True)
    except UsageError as exc:
        raise DocklineError(str(exc)) from exc  # exit 1: for a health check, no data is not healthy

    def read() -> Any:
        try:
            return read_status(
                engine.db, engine.store, engine.settings.pipeline, now=time.time(), max_backlog_age=max_backlog_age
            )
        finally:
            # A fresh read-only open each look: a user who may not write the data dir reads a
            # cleanly closed file as immutable, which would never show a writer that starts later.
            engine.db.close()

    if watch:
        _status_watch(read, as_json=as_json)
        return
    from dockline.local.status_view import status_view

    report = read()
    show_one_look(
        report,
        as_json=as_json,
        check=check,
        ok=f"ok: {report.states['processed']} processed, backlog {report.backlog.files}",
        view=status_view,
    )


def show_one_look(report: Any, *, as_json: bool, check: bool, ok: str, view: Callable[[Any], Any]) -> None:
    """One status look, local or AWS: JSON, or the ``--check`` lines (``problem: …`` each, or
    the ``ok:`` line) with exit 1 when unhealthy, or the view. ``report`` has ``to_json()``,
    ``problems`` and ``healthy``."""
    if as_json:
        print_json(report.to_json())
    elif check:
        for problem in report.problems:
            say(console, f"problem: {problem}")
        if report.healthy:
            say(console, ok)
    else:
        console.print(view(report))
    if check and not report.healthy:
        raise typer.Exit(1)


def _status_watch(read: Any, *, as_json: bool) -> None:
    """Refresh until Ctrl-C, which ends it with exit 0: stopping a watch is its normal end."""
    from rich.live import Live

    from dockline.local.status_view import status_line, status_view

    try:
        if console.is_terminal and not as_json:
            with Live(status_view(read()), console=console.rich, auto_refresh=False) as live:
                while True:
                    time.sleep(STATUS_REFRESH_SECONDS)
                    live.update(status_view(read()), refresh=True)
        while True:
            if as_json:
                sys.stdout.write(dumps(read().to_json()).decode() + "\n")
            else:
                say(console, status_line(read()))
            sys.stdout.flush()
            time.sleep(STATUS_REFRESH_SECONDS)
    except KeyboardInterrupt:
        return
