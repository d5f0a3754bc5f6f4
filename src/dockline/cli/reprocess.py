"""dockline reprocess: run settled files again (after csv_schema, on_bad_record ... changed)."""

import contextlib
import threading
from collections import Counter
from typing import Annotated, Any

import typer

from dockline.cli.app import app, console, context_of, err, new_table, print_json, status_cell
from dockline.errors import DocklineError, UsageError
from dockline.models import Status
from dockline.render import say


@app.command("reprocess")
def reprocess_command(
    ctx: typer.Context,
    key: Annotated[
        str | None, typer.Option("--key", metavar="PREFIX", help="Files whose key starts with PREFIX.")
    ] = None,
    status: Annotated[
        list[Status] | None,
        typer.Option(
            "--status",
            metavar="S",
            help="Files settled as S: processed, failed, duplicate, conflict, superseded (repeatable;"
            " with --key, both must match).",
        ),
    ] = None,
    route: Annotated[
        list[str] | None,
        typer.Option("--route", metavar="R", help="Files whose key route R takes today (repeatable)."),
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every settled file.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would run and why; change nothing.")] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=64, help="Files processed in parallel (default: [local] concurrency)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: the plan as JSON.")] = False,
) -> None:
    """Run settled files again with today's settings. A file's items are replaced, not conflicted (same
    bytes); items it no longer writes are removed. A file whose object is gone from the bucket or changed
    is left alone, items and all, with a line saying why. Each reprocessed file gets a notification with
    the attribute reprocessed=true. Safe while `dockline run` works, and after a crash: `dockline run
    --once` or `dockline reprocess` again finishes it. Exit 1 when any file failed, else 0."""
    from dockline.reprocess import Selection

    if as_json and not dry_run:
        raise UsageError("--json shows the plan: it goes with --dry-run")
    selection = Selection(
        key_prefix=key, statuses=tuple(status or ()), everything=everything, routes=tuple(route or ())
    )
    c = context_of(ctx)
    if dry_run:
        _dry_run(c.engine(read_only=True), selection, as_json=as_json)
        return
    engine = c.engine(create=False)
    try:
        failed = _reprocess(engine, selection, workers=workers)
    finally:
        engine.db.close()
    if failed:
        raise typer.Exit(1)


def _dry_run(engine: Any, selection: Any, *, as_json: bool) -> None:
    from dockline.local.reprocess import plan_local

    steps = plan_local(engine, selection)
    if as_json:
        print_json(
            [
                {
                    "key": s.candidate.ref.key,
                    "version": s.candidate.ref.version,
                    "status": str(s.candidate.status),
                    "records": s.candidate.records,
                    "action": "skip" if s.ref is None else ("resume" if s.candidate.resumed else "reprocess"),
                    "why": s.why or None,
                }
                for s in steps
            ]
        )
        return
    runnable = sum(1 for s in steps if s.ref is not None)
    table = new_table(
        f"would reprocess {runnable} of {len(steps)} selected files (dry run: nothing changed)",
        ("key", 16),
        ("status", 0),
        ("records", 0),
        ("action", -1),
    )
    for s in steps:
        table.add_row(s.candidate.ref.key, status_cell(str(s.candidate.status)), str(s.candidate.records), s.action)
    console.print(table)


def _reprocess(engine: Any, selection: Any, *, workers: int | None) -> int:
    """Plan, report the skipped, execute with a progress bar, summarise. Returns how many failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dockline.local.reprocess import execute, plan_local, records_done

    steps = plan_local(engine, selection)
    for step in steps:
        if step.ref is None:
            say(err, f"not reprocessed: {step.candidate.ref.key}: {step.why}")
    since = engine.now()
    with Progress(
        TextColumn("reprocessing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files, {task.fields[records]:,} records"),
        TimeRemainingColumn(),
        console=err.rich,
        disable=not err.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("files", total=None, records=0)
        finished = threading.Event()

        def count_records() -> None:  # a look at the files table twice a second, never per record
            while not finished.wait(0.5):
                with contextlib.suppress(DocklineError):
                    bar.update(task, records=records_done(engine.db, since))

        if err.is_terminal:
            threading.Thread(target=count_records, name="dockline-progress", daemon=True).start()
        try:
            report = execute(
                engine,
                steps,
                workers=workers,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        finally:
            finished.set()
    for line in report.left:
        say(err, line)
    summary = report.summary
    # What the request achieved, whoever ran each file: a `dockline run` watching the same
    # data dir takes reopened files too (``earlier``: settled by it, not by this command).
    by_status = Counter(o.status for o in summary.outcomes)
    counts = ", ".join(f"{by_status[s]} {s}" for s in Status if by_status[s])
    records = sum(o.records for o in summary.outcomes)
    n = len(summary.outcomes)
    files = f"{n} file{'' if n == 1 else 's'}"
    line = f"reprocessed {files} in {summary.seconds:.2f}s: {counts or 'none'}; {records} records"
    if summary.earlier:
        line += f" ({summary.earlier} of the files by another process)"
    if summary.busy:
        line += f"; {summary.busy} still held by another process (it finishes them)"
    say(err, line)
    for outcome in summary.outcomes:
        if outcome.status is Status.FAILED or outcome.status is Status.CONFLICT:
            say(err, f"{outcome.status}: {outcome.ref.key}: {outcome.error}")
    for problem in summary.errors:
        say(err, f"not settled: {problem} (the next `dockline run` finishes it)")
    if summary.trouble:
        say(err, f"dockline: error: {summary.trouble}; the rest is left for `dockline run --once`")
        return 1
    return report.failed + len(summary.errors)
