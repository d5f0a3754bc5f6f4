"""ledger list / export / get and files list: paged, filtered, streamed."""

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dockline import listing
from dockline.cli.app import (
    console,
    context_of,
    err,
    files_app,
    ledger_app,
    new_table,
    print_json,
    status_cell,
)
from dockline.errors import UsageError
from dockline.jsonx import dumps
from dockline.models import Status
from dockline.render import say

if TYPE_CHECKING:
    from dockline.render_table import LiteralTable

# -- ledger / files / notifications ------------------------------------------------------
_KeyOption = Annotated[str | None, typer.Option("--key", help="Only keys starting with this prefix.")]
_PkOption = Annotated[str | None, typer.Option("--pk-prefix", help="Only pks starting with this prefix.")]
_SinceOption = Annotated[
    str | None, typer.Option("--since", help="Only since this time: an age (30m, 1h, 2d, 1w) or an ISO time.")
]
_RouteOption = Annotated[str | None, typer.Option("--route", help="Only what this route read (see [[routes]]).")]
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
    route: _RouteOption = None,
) -> None:
    """List ledger items, newest first (pk, key, status, payload)."""
    from dockline.local.export import write_json_array, write_ndjson
    from dockline.local.queries import item_rows

    if as_json and ndjson:
        raise UsageError("use --json or --ndjson, not both")
    where = listing.page_filter(
        key=key, pk_prefix=pk_prefix, since=since, limit=limit, everything=everything, route=route
    )
    db = context_of(ctx).engine(read_only=True).db
    page = listing.Page.of(item_rows(db, where), where)
    with listing.stdout_may_close():
        if as_json or ndjson:
            count = (write_ndjson if ndjson else write_json_array)(page, sys.stdout.buffer)
            if page.more:
                say(err, f"dockline: the newest {count} items shown; there are more: use --all, --limit N or a filter")
            return

        def build(title: str) -> "LiteralTable":
            return new_table(title, ("pk", 12), ("key", 16), ("status", 0), ("payload", -1))

        def add(table: "LiteralTable", row: Any) -> None:
            payload = row["payload"]
            if payload is None:
                payload = f"(oversized: {row['bucket']}/{row['key']}?sha256={row['version']})"
            # Cut before escaping, so an escape is never cut in half.
            shown = payload if len(payload) < 80 else payload[:77] + "..."
            table.add_row(row["pk"], row["key"], status_cell("processed"), shown)

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
    route: _RouteOption = None,
) -> None:
    """Export every ledger item (in pk order) as NDJSON or CSV, streamed, numbers exact."""
    from dockline.local.export import atomic_output, check_out_path, write_csv, write_ndjson
    from dockline.local.queries import count_items, item_rows

    writers = {"ndjson": write_ndjson, "csv": write_csv}
    if fmt not in writers:
        raise UsageError(f"--format {fmt!r}: use ndjson or csv")
    where = listing.page_filter(key=key, pk_prefix=pk_prefix, since=since, everything=True, route=route)
    engine = context_of(ctx).engine(read_only=True)
    target = check_out_path(out, bucket_dir=engine.bucket_dir, database=engine.db.path) if out is not None else None
    # A bar only where a person watches, and never mixed into the export itself.
    show_bar = err.is_terminal and (target is not None or not sys.stdout.isatty())
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(atomic_output(target)) if target is not None else sys.stdout.buffer
        on_row = None
        if show_bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            bar = stack.enter_context(
                Progress(
                    TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err.rich
                )
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

    item = get_item(context_of(ctx).engine(read_only=True).db, pk)
    if item is None:
        raise UsageError(f"no ledger item with pk {pk!r}")
    if as_json:
        print_json(item)
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
    route: Annotated[
        str | None, typer.Option("--route", help="Only files whose key this route takes (with --ignored: nearest).")
    ] = None,
    ignored: Annotated[
        bool, typer.Option("--ignored", help="Files the last scan saw that no route takes, and why.")
    ] = False,
) -> None:
    """List received object versions, newest first: key, status, pk, attempts, records, bytes, time, reason.

    In flight: the records and bytes done so far; settled: how long the last attempt took."""
    from dataclasses import replace

    from dockline.local.queries import file_rows

    where = replace(
        listing.page_filter(key=key, pk_prefix=pk_prefix, since=since, limit=limit, everything=everything, route=route),
        status=status,
    )
    engine = context_of(ctx).engine(read_only=True)
    if ignored:
        _ignored_list(engine.db, where, as_json=as_json, ndjson=ndjson, status=status, since=since)
        return
    page = listing.Page.of(file_rows(engine.db, where, routes=engine.settings.pipeline.table), where)
    with listing.stdout_may_close():
        if as_json or ndjson:
            count = _write_rows(page, ndjson=ndjson)
            if page.more:
                say(err, f"dockline: the newest {count} files shown; there are more: use --all, --limit N or a filter")
            return

        def build(title: str) -> "LiteralTable":
            return new_table(
                title,
                ("key", 20),
                ("status", 0),
                ("pk", 10),
                ("attempts", 0),
                ("records", 0),
                ("bytes", 0),
                ("time", 0),
                ("reason", -1),
            )

        def add(table: "LiteralTable", row: dict[str, Any]) -> None:
            reason = row["error"] or ""
            if row["skipped"]:
                reason = (
                    (reason + "; " if reason else "")
                    + "skipped "
                    + ", ".join(f"line {s['index']}: {s['reason']}" for s in row["skipped"][:3])
                )
            if row.get("dropped"):
                reason = (reason + "; " if reason else "") + f"{row['dropped']} dropped by the transform"
            records, done = _progress_cells(row)
            table.add_row(
                row["key"],
                status_cell(row["status"]),
                row["pk"] or "",
                str(row["attempts"]),
                records,
                done,
                "" if row["seconds"] is None else f"{row['seconds']:.2f}s",
                reason,
            )

        listing.show_page(console, page, "files", build, add)


def _progress_cells(row: dict[str, Any]) -> tuple[str, str]:
    """Records and bytes: done so far for a file in flight (``12,000`` and ``1.2 MB / 7.0 MB``),
    the final numbers for the others."""
    from dockline.local.progress import size_text

    size = row["size"]
    if row["status"] == str(Status.PROCESSING):
        total = "" if size is None else f" / {size_text(size)}"
        return f"{row['records_done']:,}", size_text(row["bytes_done"]) + total
    return f"{row['records']:,}", "" if size is None else size_text(size)


def _ignored_list(
    db: Any, where: Any, *, as_json: bool, ndjson: bool, status: Status | None, since: str | None
) -> None:
    """``files list --ignored``: keys no route takes, by key, with the nearest route and why."""
    from dockline.local.queries import ignored_rows

    if status is not None or since is not None:
        raise UsageError("--ignored lists keys no route takes: they have no status or time to filter on")
    page = listing.Page.of(ignored_rows(db, where), where)
    with listing.stdout_may_close():
        if as_json or ndjson:
            _write_rows(page, ndjson=ndjson)
            return

        def build(title: str) -> "LiteralTable":
            return new_table(title, ("key", 20), ("nearest route", 0), ("why", 0), ("detail", -1))

        def add(table: "LiteralTable", row: dict[str, Any]) -> None:
            table.add_row(row["key"], row["nearest_route"] or "", row["why"], row["detail"])

        rows = list(page)
        title = f"{len(rows)} files no route takes (as the last scan saw them)"
        if page.more:
            title += "; there are more: use --all, --limit N or --key"
        listing.print_tables(console, rows, title, build, add)


def _write_rows(rows: Any, *, ndjson: bool) -> int:
    """Rows as one JSON array, or one per line, streamed. Returns the count."""
    out = sys.stdout.buffer
    count = 0
    for row in rows:
        out.write(dumps(row) + b"\n" if ndjson else (b"[\n" if count == 0 else b",\n") + dumps(row))
        count += 1
    if not ndjson:
        out.write(b"[]\n" if count == 0 else b"\n]\n")
    return count
