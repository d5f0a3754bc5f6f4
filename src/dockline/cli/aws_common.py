"""What the AWS-facing commands share: clients that honour the environment, dates, progress."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dockline.errors import UsageError
from dockline.render import LazyConsole, rich_console

if TYPE_CHECKING:
    from rich.console import Console

    from dockline.aws.backfill import Tally
    from dockline.aws.runtime import Clients
    from dockline.config import Settings


def aws_clients() -> Clients:
    """Clients from one boto3 session. botocore reads ``AWS_ENDPOINT_URL`` (and
    ``AWS_ENDPOINT_URL_<SERVICE>``) itself, so nothing here sets an endpoint; the region
    is ``AWS_REGION`` when set (botocore alone reads only ``AWS_DEFAULT_REGION``), else
    botocore's own chain."""
    import boto3

    from dockline.aws.runtime import Clients

    return Clients(session=boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None))


def parse_since(text: str | None) -> datetime | None:
    """``--since``: an ISO 8601 date or time; without a zone, UTC. Raises UsageError."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--since {text!r} is not a date (use e.g. 2026-11-01 or 2026-11-01T12:00:00Z)") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextmanager
def backfill_progress(console: Console | LazyConsole, *, enabled: bool) -> Iterator[Callable[[Tally], None]]:
    """A progress display on a terminal (the total is unknown while the bucket is walked:
    the bar pulses and the counts grow); a callback that does nothing otherwise."""
    if not enabled:
        yield lambda _tally: None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("backfill"), BarColumn(), TextColumn("{task.description}"))
    with Progress(*columns, TimeElapsedColumn(), console=rich_console(console), transient=True) as progress:
        task = progress.add_task("", total=None)

        def show(tally: Tally) -> None:
            verb = "would send" if tally.dry_run else "sent"
            progress.update(task, description=f"listed {tally.listed}, settled {tally.settled}, {verb} {tally.sent}")

        yield show


def status_aws(
    settings: Settings, *, as_json: bool, watch: bool, check: bool, scan: bool, max_backlog_age: float
) -> None:
    """``dockline status --aws``: one look; ``--check`` exits 1 naming each problem.
    Raises UsageError for --watch, DocklineError when the stack cannot be read."""
    from dockline.aws.status import read_aws_status
    from dockline.aws.status_view import aws_status_view
    from dockline.cli.status import show_one_look

    if watch:
        # Each look scans the table: refreshing it every 2 s would bill a full read of the
        # table every 2 s. Use `watch -n 60 dockline status --aws` (or --skip-scan) instead.
        raise UsageError("--watch is local only: each `status --aws` scans the table; run it from `watch -n 60`")
    status = read_aws_status(settings.aws.stack_name, aws_clients(), scan=scan, max_backlog_age=max_backlog_age)
    waiting = status.queue.waiting if status.queue else 0
    ok = f"ok: stack {status.stack}, {waiting} waiting, no dead letters"
    show_one_look(status, as_json=as_json, check=check, ok=ok, view=aws_status_view)
