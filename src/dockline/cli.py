"""The ``dockline`` command: thin wrappers that parse, call one library function, print.

Errors raised as DocklineError become one line on stderr and a non-zero exit code
(2 for bad usage or configuration, 1 otherwise); a traceback is a bug.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from dockline import __version__, listing
from dockline.config import Settings, load_settings
from dockline.errors import ConfigError, DocklineError, UsageError
from dockline.jsonx import dumps
from dockline.models import Status
from dockline.render import LineHandler, LiteralTable, literal, say, visible

# Piped into a file or a CI log, tables get 160 columns instead of Rich's default 80
# (COLUMNS still wins); a terminal keeps its own width.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
# Errors and status lines are one line each: never folded at 80 columns when stderr is a
# file or a pipe (rich's default width there), so a long key stays on one line.
err = Console(stderr=True, soft_wrap=True)

DEFAULT_DATA_DIR = "dockline-data"

app = typer.Typer(
    name="dockline",
    help="Event-driven file pipeline: a file lands under incoming/, is parsed, written to a ledger "
    "and notified - on one machine (this engine) or on AWS (synth/deploy).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog="Start with `dockline demo`. Then: `dockline put order.json && dockline run --once`, "
    "`dockline files list --status failed`, `dockline ledger list --json`. "
    "Settings: dockline.toml (see the README).",
)
ledger_app = typer.Typer(help="Show the ledger: one item per document or record.", no_args_is_help=True)
files_app = typer.Typer(help="Show every received object version and its state.", no_args_is_help=True)
notifications_app = typer.Typer(
    help="Show the local topic's messages and deliveries; send deliveries again.", no_args_is_help=True
)
dlq_app = typer.Typer(help="Inspect and redrive dead letters (local, or AWS with --queue-url).", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(files_app, name="files")
app.add_typer(notifications_app, name="notifications")
app.add_typer(dlq_app, name="dlq")


@dataclass
class Context:
    data_dir: Path
    config: Path | None

    def settings(self) -> Settings:
        return load_settings(self.config, search_dir=Path.cwd())

    def engine(self, *, create: bool = True, echo: bool = False, read_only: bool = False) -> Any:
        """The local engine. ``read_only`` (for commands that only look): opens the database
        read-only, never waits for a writer, works on a data dir the user cannot write.
        Raises UsageError when there is no data yet and ``create`` is false or ``read_only``."""
        from dockline.local.engine import LocalEngine

        if (read_only or not create) and not (self.data_dir / "dockline.db").exists():
            raise UsageError(
                f"no dockline data in {self.data_dir} yet (use --data-dir, or `dockline put` / `dockline run` first)"
            )
        return LocalEngine(
            self.data_dir,
            self.settings(),
            echo=(lambda line: say(console, line)) if echo else None,
            read_only=read_only,
            on_wait=lambda line: say(err, line),
        )


def _ctx(ctx: typer.Context) -> Context:
    obj = ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj


def _version(value: bool) -> None:
    if value:
        console.print(f"dockline {__version__}")
        raise typer.Exit


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            envvar="DOCKLINE_DATA_DIR",
            help="Where the local bucket folder and SQLite ledger live.",
            show_default=True,
        ),
    ] = Path(DEFAULT_DATA_DIR),
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="DOCKLINE_CONFIG", help="Settings file (default: ./dockline.toml if present)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Event-driven file pipeline."""
    ctx.obj = Context(data_dir=data_dir, config=config)


def _table(title: str, *columns: tuple[str, int]) -> LiteralTable:
    """A table that stays readable in 80 columns: (name, 0) never wraps, (name, n) folds
    but keeps at least n characters, (name, -1) takes the remaining width.

    Every str cell is shown literally (render.LiteralTable): keys, ids, reasons and
    payloads are user data, never markup; a styled cell is a Text built here."""
    table = LiteralTable(title=title)
    for name, width in columns:
        if width == 0:
            table.add_column(name, no_wrap=True)
        elif width < 0:
            table.add_column(name, ratio=1)
        else:
            table.add_column(name, min_width=width, overflow="fold")
    return table


def _print_json(value: Any) -> None:
    sys.stdout.write(dumps(value, indent=True).decode() + "\n")


def _status_style(status: str) -> str:
    return {
        "processed": "green",
        "failed": "red",
        "conflict": "yellow",
        "duplicate": "cyan",
        "superseded": "blue",  # a harmless race, not a failure: not red
    }.get(status, "white")


def _status(status: str) -> Text:
    """The status cell: the state's own words, coloured by _status_style."""
    return literal(status, style=_status_style(status))


# -- put / run -------------------------------------------------------------------------
@app.command()
def put(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The file to upload.")],
    key: Annotated[str | None, typer.Option("--key", help="Object key (default: <prefix><file name>).")] = None,
) -> None:
    """Upload FILE into the local bucket atomically (it is processed by `dockline run`)."""
    c = _ctx(ctx)
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
) -> None:
    """Watch the bucket folder and process matching new files (Ctrl-C stops)."""
    from dockline.local.db import StorageError

    if strict and not once:
        raise UsageError("--strict needs --once (a watcher has no end to report on)")
    c = _ctx(ctx)
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
    try:
        _run(engine, once=once, workers=workers, quiet=quiet, strict=strict)
    finally:
        engine.db.close()  # the last sync, and a clean WAL for read-only users


def _run(engine: Any, *, once: bool, workers: int | None, quiet: bool, strict: bool = False) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    stopper = _Stopper(engine, once=once, strict=strict)
    stopper.install()
    if once:
        show_progress = err.is_terminal and quiet
        with Progress(
            TextColumn("processing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not show_progress,
            transient=True,
        ) as bar:
            task = bar.add_task("files", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            summary = engine.run_once(workers=workers, progress=progress, stop=stopper.stop)
        stopper.finish(summary)
        return
    say(
        err,
        f"watching {engine.bucket_dir} for {engine.settings.pipeline.prefix}* "
        f"({', '.join(engine.settings.pipeline.all_suffixes())}); Ctrl-C to stop",
    )
    engine.watch(
        workers=workers,
        stop=stopper.stop,
        on_summary=_print_problems,
        on_trouble=lambda line: say(err, f"not processing: {line}"),
    )
    stopper.finish(None)


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
    line = f"{len(summary.outcomes)} files settled in {summary.seconds:.2f}s: " + ", ".join(parts)
    if summary.busy:
        line += f"; {summary.busy} held by another process"
    if summary.trouble:
        say(err, f"dockline: error: {summary.trouble} ({line}; the rest is left for the next run)")
        return
    failed = summary.count(Status.FAILED)
    if strict and failed:
        line += f"; exit 1 (--strict): {failed} file{'' if failed == 1 else 's'} failed"
    say(err, line)
    _print_problems(summary)


# -- ledger / files / notifications ------------------------------------------------------
_KeyOption = Annotated[str | None, typer.Option("--key", help="Only keys starting with this prefix.")]
_PkOption = Annotated[str | None, typer.Option("--pk-prefix", help="Only pks starting with this prefix.")]
_SinceOption = Annotated[
    str | None, typer.Option("--since", help="Only since this time: an age (30m, 1h, 2d, 1w) or an ISO time.")
]
_AllOption = Annotated[bool, typer.Option("--all", help=f"Everything, not the newest {listing.DEFAULT_LIMIT}.")]
_LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help=f"The newest this many (default {listing.DEFAULT_LIMIT}).")
]


@ledger_app.command("list")
def ledger_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, streamed (exact numbers).")] = False,
    ndjson: Annotated[bool, typer.Option("--ndjson", help="One JSON item per line (exact numbers).")] = False,
    limit: _LimitOption = None,
    everything: _AllOption = False,
    key: _KeyOption = None,
    pk_prefix: _PkOption = None,
    since: _SinceOption = None,
) -> None:
    """List ledger items, newest first (pk, key, status, payload)."""
    from dockline.local.export import write_json_array, write_ndjson
    from dockline.local.queries import item_rows

    if as_json and ndjson:
        raise UsageError("use --json or --ndjson, not both")
    where = listing.page_filter(key=key, pk_prefix=pk_prefix, since=since, limit=limit, everything=everything)
    db = _ctx(ctx).engine(read_only=True).db
    page = listing.Page.of(item_rows(db, where), where)
    with listing.stdout_may_close():
        if as_json or ndjson:
            count = (write_ndjson if ndjson else write_json_array)(page, sys.stdout.buffer)
            if page.more:
                say(err, f"dockline: the newest {count} items shown; there are more: use --all, --limit N or a filter")
            return

        def build(title: str) -> LiteralTable:
            return _table(title, ("pk", 12), ("key", 16), ("status", 0), ("payload", -1))

        def add(table: LiteralTable, row: Any) -> None:
            payload = row["payload"]
            if payload is None:
                payload = f"(oversized: {row['bucket']}/{row['key']}?sha256={row['version']})"
            # Cut before escaping, so an escape is never cut in half.
            shown = payload if len(payload) < 80 else payload[:77] + "..."
            table.add_row(row["pk"], row["key"], _status("processed"), shown)

        listing.show_page(console, page, "ledger items", build, add)


@ledger_app.command("export")
def ledger_export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="ndjson (one item per line) or csv.")] = "ndjson",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (whole or not at all) instead of to stdout.")
    ] = None,
    key: _KeyOption = None,
    pk_prefix: _PkOption = None,
    since: _SinceOption = None,
) -> None:
    """Export every ledger item (in pk order) as NDJSON or CSV, streamed, numbers exact."""
    from dockline.local.export import atomic_output, check_out_path, write_csv, write_ndjson
    from dockline.local.queries import count_items, item_rows

    writers = {"ndjson": write_ndjson, "csv": write_csv}
    if fmt not in writers:
        raise UsageError(f"--format {fmt!r}: use ndjson or csv")
    where = listing.page_filter(key=key, pk_prefix=pk_prefix, since=since, everything=True)
    engine = _ctx(ctx).engine(read_only=True)
    target = check_out_path(out, bucket_dir=engine.bucket_dir, database=engine.db.path) if out is not None else None
    # A bar only where a person watches, and never mixed into the export itself.
    show_bar = err.is_terminal and (target is not None or not sys.stdout.isatty())
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(atomic_output(target)) if target is not None else sys.stdout.buffer
        on_row = None
        if show_bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            bar = stack.enter_context(
                Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err)
            )
            task = bar.add_task("export", total=count_items(engine.db, where))
            step = [0]

            def on_row() -> None:
                step[0] += 1
                if step[0] % 2000 == 0:
                    bar.update(task, completed=step[0])

        with listing.stdout_may_close():
            count = writers[fmt](item_rows(engine.db, where, order="pk"), sink, on_row=on_row)
        if show_bar:
            bar.update(task, completed=count)
    if target is not None:
        say(err, f"exported {count} items to {target}")


@ledger_app.command("get")
def ledger_get(
    ctx: typer.Context,
    pk: Annotated[str, typer.Argument(help="The item's partition key.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show one ledger item by its pk."""
    from dockline.local.queries import get_item

    item = get_item(_ctx(ctx).engine(read_only=True).db, pk)
    if item is None:
        raise UsageError(f"no ledger item with pk {pk!r}")
    if as_json:
        _print_json(item)
        return
    for name, value in item.items():
        if name == "payload":
            # Indented JSON: its own newlines are layout (a JSON string cannot hold a raw
            # one), so each line is printed literally on its own.
            lines = dumps(value, indent=True).decode().split("\n")
            say(console, f"{name}: {lines[0]}")
            for line in lines[1:]:
                say(console, line)
        else:
            say(console, f"{name}: {value}")


@files_app.command("list")
def files_list(
    ctx: typer.Context,
    status: Annotated[
        Status | None, typer.Option("--status", help="Only files in this state.", case_sensitive=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, streamed.")] = False,
    ndjson: Annotated[bool, typer.Option("--ndjson", help="One JSON file row per line.")] = False,
    limit: _LimitOption = None,
    everything: _AllOption = False,
    key: _KeyOption = None,
    pk_prefix: _PkOption = None,
    since: _SinceOption = None,
) -> None:
    """List received object versions, newest first: key, status, reason, pk, attempts."""
    from dataclasses import replace

    from dockline.local.queries import file_rows

    where = replace(
        listing.page_filter(key=key, pk_prefix=pk_prefix, since=since, limit=limit, everything=everything),
        status=status,
    )
    page = listing.Page.of(file_rows(_ctx(ctx).engine(read_only=True).db, where), where)
    with listing.stdout_may_close():
        if as_json or ndjson:
            out = sys.stdout.buffer
            count = 0
            for row in page:
                out.write(dumps(row) + b"\n" if ndjson else (b"[\n" if count == 0 else b",\n") + dumps(row))
                count += 1
            if not ndjson:
                out.write(b"[]\n" if count == 0 else b"\n]\n")
            if page.more:
                say(err, f"dockline: the newest {count} files shown; there are more: use --all, --limit N or a filter")
            return

        def build(title: str) -> LiteralTable:
            return _table(
                title, ("key", 20), ("status", 0), ("pk", 10), ("attempts", 0), ("records", 0), ("reason", -1)
            )

        def add(table: LiteralTable, row: dict[str, Any]) -> None:
            reason = row["error"] or ""
            if row["skipped"]:
                reason = (
                    (reason + "; " if reason else "")
                    + "skipped "
                    + ", ".join(f"line {s['index']}: {s['reason']}" for s in row["skipped"][:3])
                )
            table.add_row(
                row["key"], _status(row["status"]), row["pk"] or "", str(row["attempts"]), str(row["records"]), reason
            )

        listing.show_page(console, page, "files", build, add)


@notifications_app.command("list")
def notifications_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many messages.")] = None,
) -> None:
    """List the local topic's messages and the state of each webhook/email delivery."""
    from rich.text import Text

    engine = _ctx(ctx).engine(read_only=True)
    messages = engine.topic.messages(limit=limit)
    if as_json:
        _print_json(messages)
        return
    table = _table(
        f"{len(messages)} notifications",
        ("id", 0),
        ("published_at", 0),
        ("subject", 10),
        ("message", -1),
        ("status", 0),
        ("deliveries", 24),
    )
    for m in messages:
        # One line per delivery; each line's own text (a receiver's answer) shown literally.
        deliveries = Text("\n".join(visible(_delivery_state(d)) for d in m["deliveries"]))
        table.add_row(
            str(m["id"]),
            m["published_at"],
            m["subject"],
            m["message"],
            str(m["attributes"].get("status", "")),
            deliveries,
        )
    console.print(table)


def _delivery_state(delivery: dict[str, Any]) -> str:
    """``webhook:https://h/p: retrying at T (2 attempts): reason`` - one line per delivery."""
    status = delivery["status"]
    if status == "retrying" and delivery.get("next_attempt_at"):
        status = f"retrying at {delivery['next_attempt_at']}"
    attempts = delivery["attempts"]
    name = delivery["subscription"]
    line = f"{name}: {status} ({attempts} attempt{'' if attempts == 1 else 's'})"
    error = delivery["error"]
    if error and delivery["status"] != "delivered":
        line += ": " + error.removeprefix(f"{name}: ")  # reasons start with the name: say it once
    return line


@notifications_app.command("redeliver")
def notifications_redeliver(
    ctx: typer.Context,
    notification_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", help="The notification whose deliveries to send again.")
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Every delivery not delivered yet (failed or retrying).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Make deliveries due now with a fresh retry horizon, and send them."""
    if (notification_id is None) == (not failed):
        raise UsageError("name one notification ID, or pass --failed")
    engine = _ctx(ctx).engine(create=False)
    worker = engine.deliveries
    made_due = worker.redeliver(notification_id, failed=failed)
    sent = worker.deliver_due(notification_id=notification_id) if made_due else []
    counts = {state: sum(1 for s in sent if s.status == state) for state in ("delivered", "retrying", "failed")}
    if as_json:
        _print_json({"due": made_due, "sent": len(sent), **counts, "deliveries": [_sent_json(s) for s in sent]})
        return
    line = f"{made_due} made due, {len(sent)} sent: " + ", ".join(f"{n} {state}" for state, n in counts.items())
    retrying = [s.next_attempt_at for s in sent if s.next_attempt_at]
    if retrying:
        line += f" (next try at {min(retrying)})"
    say(console, line)


def _sent_json(sent: Any) -> dict[str, Any]:
    return {
        "notification_id": sent.notification_id,
        "subscription": sent.subscription,
        "status": sent.status,
        "attempts": sent.attempts,
        "error": sent.error,
        "next_attempt_at": sent.next_attempt_at,
    }


@app.command()
def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--notifications-older-than",
            help="Delete notifications older than this (30d, 12h, 90m, 2w) whose deliveries all settled.",
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be deleted.")] = False,
) -> None:
    """Delete old notifications and their settled deliveries; never items, files or dead letters."""
    from datetime import UTC, datetime

    from dockline.local.prune import parse_age, prune_notifications
    from dockline.pipeline import iso

    age = parse_age(older_than)
    before = iso(datetime.now(UTC) - age)
    engine = _ctx(ctx).engine(read_only=dry_run, create=False)
    done = prune_notifications(engine.db, before=before, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    line = f"{verb} {done.notifications} notifications and {done.deliveries} deliveries published before {before}"
    if done.kept_unsettled:
        line += f"; kept {done.kept_unsettled} older ones with deliveries still to send"
    say(console, line)


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
) -> None:
    """What the local pipeline is doing: files by state, the backlog and its oldest file, files and records
    per second (1, 5, 15 min), files in flight, deliveries, dead letters, the last error. Read-only: safe
    while `dockline run` works. Local engine only: `status --aws` is not there yet."""
    from dockline.local.status import read_status

    if watch and check:
        raise UsageError("--check is one look for cron and health checks; it cannot be combined with --watch")
    try:
        engine = _ctx(ctx).engine(read_only=True)
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
    report = read()
    if as_json:
        _print_json(report.to_json())
    elif check:
        for problem in report.problems:
            say(console, f"problem: {problem}")
        if report.healthy:
            say(console, f"ok: {report.states['processed']} processed, backlog {report.backlog.files}")
    else:
        from dockline.local.status_view import status_view

        console.print(status_view(report))
    if check and not report.healthy:
        raise typer.Exit(1)


def _status_watch(read: Any, *, as_json: bool) -> None:
    """Refresh until Ctrl-C, which ends it with exit 0: stopping a watch is its normal end."""
    from rich.live import Live

    from dockline.local.status_view import status_line, status_view

    try:
        if console.is_terminal and not as_json:
            with Live(status_view(read()), console=console, auto_refresh=False) as live:
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


# -- dead letters ----------------------------------------------------------------------
QueueUrl = Annotated[
    str | None,
    typer.Option("--queue-url", help="Work on this AWS SQS dead-letter queue instead of the local one."),
]
StackOption = Annotated[
    bool,
    typer.Option("--aws", help="Use the deployed stack's DLQ (DeadLetterQueueUrl output) instead of the local one."),
]


def _aws_queue(c: Context, queue_url: str | None, use_stack: bool) -> str | None:
    if queue_url:
        return queue_url
    if use_stack:
        from dockline.aws.deadletters import queue_url_from_stack

        return str(queue_url_from_stack(c.settings().aws.stack_name))
    return None


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    queue_url: QueueUrl = None,
    aws: StackOption = False,
) -> None:
    """List dead letters: files that failed for good or ran out of retries."""
    from dockline.redrive import short_id

    letters = _dead_letters(_ctx(ctx), queue_url, aws)
    if as_json:
        _print_json([_letter_json(letter) for letter in letters])
        return
    # The table shows a short id (key@<12 hex>) that `dlq show` and `dlq redrive` accept;
    # --json has the full ids.
    table = _table(
        f"{len(letters)} dead letters", ("id", 16), ("key", 16), ("attempts", 0), ("failed_at", 0), ("reason", -1)
    )
    for letter in letters:
        table.add_row(short_id(letter), letter.ref.key, str(letter.attempts), letter.failed_at, letter.reason)
    console.print(table)


def _dead_letters(c: Context, queue_url: str | None, use_stack: bool) -> list[Any]:
    """The local dead letters, or the AWS queue's with --queue-url / --aws."""
    url = _aws_queue(c, queue_url, use_stack)
    if url:
        from dockline.aws.deadletters import list_dead_letters

        return list_dead_letters(url, settings=c.settings())
    return list(c.engine(read_only=True).dead_letters.list())


def _letter_json(letter: Any) -> dict[str, Any]:
    return {
        "id": letter.id,
        "bucket": letter.ref.bucket,
        "key": letter.ref.key,
        "version": letter.ref.version,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "failed_at": letter.failed_at,
    }


@dlq_app.command("show")
def dlq_show(
    ctx: typer.Context,
    letter_id: Annotated[
        str,
        typer.Argument(metavar="ID", help="The dead letter's id, a unique prefix of it, or its key (see `dlq list`)."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    queue_url: QueueUrl = None,
    aws: StackOption = False,
) -> None:
    """Show one dead letter."""
    from dockline.redrive import resolve

    row = _letter_json(resolve(_dead_letters(_ctx(ctx), queue_url, aws), letter_id))
    if as_json:
        _print_json(row)
        return
    for name, value in row.items():
        say(console, f"{name}: {value}")


@dlq_app.command("redrive")
def dlq_redrive(
    ctx: typer.Context,
    letter_id: Annotated[
        str | None,
        typer.Argument(metavar="[ID]", help="The dead letter to redrive: its id, a unique prefix, or its key."),
    ] = None,
    all_letters: Annotated[bool, typer.Option("--all", help="Redrive every dead letter.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be done.")] = False,
    queue_url: QueueUrl = None,
    aws: StackOption = False,
) -> None:
    """Process dead-lettered files again (after fixing them); settled letters are removed."""
    if (letter_id is None) == (not all_letters):
        raise UsageError("name one dead letter ID, or pass --all")
    c = _ctx(ctx)
    url = _aws_queue(c, queue_url, aws)
    ids = None if all_letters else [letter_id or ""]
    if url:
        from dockline.aws.deadletters import redrive_aws

        for line in redrive_aws(url, ids=ids, dry_run=dry_run, settings=c.settings()):
            say(console, line)
        return
    engine = c.engine(create=False)
    steps = engine.plan_redrive(ids)
    if not steps:
        console.print("no dead letters")
        return
    if dry_run:
        for step in steps:
            say(console, f"would {step.action}: {step.letter.ref.key} ({step.letter.id})")
        return
    for step, outcome in engine.redrive(steps):
        state = "left in the DLQ" if outcome is None else str(outcome.status)
        reason = f": {outcome.error}" if outcome is not None and outcome.error else ""
        say(console, f"{step.letter.ref.key}: {step.action} -> {state}{reason}")


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


# -- AWS -------------------------------------------------------------------------------
@app.command()
def synth(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder for the CloudFormation templates.")] = Path("cdk.out"),
    mode: Annotated[str | None, typer.Option("--mode", help="Override [aws] trigger: queue or direct.")] = None,
) -> None:
    """Write the AWS stack's CloudFormation template(s); needs no AWS credentials."""
    from dataclasses import replace

    from dockline.infra import commands

    settings = _ctx(ctx).settings()
    if mode is not None:
        if mode not in ("queue", "direct"):
            raise UsageError("--mode must be 'queue' or 'direct'")
        settings = replace(settings, aws=replace(settings.aws, trigger=mode))
    for path in commands.synth(settings, out):
        say(console, f"wrote {path}")


@app.command()
def deploy(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder for the synthesized assembly.")] = Path("cdk.out"),
    approve: Annotated[bool, typer.Option("--approve", help="Do not ask before IAM/security changes.")] = False,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile to deploy with.")] = None,
) -> None:
    """Deploy the stack with the AWS CDK CLI (needs AWS credentials and npx)."""
    from dockline.infra import commands

    code = commands.deploy(_ctx(ctx).settings(), out_dir=out, approve=approve, profile=profile)
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point: one-line errors, never a traceback."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    # Warnings from the library (a failed delivery, with the receiver's answer) are
    # printed like errors: one literal line each, never raw.
    logging.getLogger("dockline").addHandler(LineHandler(err))
    try:
        app()
    except (UsageError, ConfigError) as exc:
        say(err, f"dockline: error: {exc}")
        sys.exit(2)
    except DocklineError as exc:
        say(err, f"dockline: error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
