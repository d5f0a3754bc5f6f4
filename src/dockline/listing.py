"""Long listings for people and pipes: a page of the newest rows, or all of them, printed
as they are read (``ledger list``, ``files list``, ``ledger export``).

Imported by the CLI at start-up, so it imports nothing heavy until a listing runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from dockline.errors import UsageError
from dockline.render import LazyConsole, say

if TYPE_CHECKING:
    from rich.console import Console

    from dockline.local.queries import Filter
    from dockline.render_table import LiteralTable

DEFAULT_LIMIT = 50
TABLE_ROWS = 1000  # rows per printed table; also the largest page read whole before printing


def page_filter(
    *,
    key: str | None,
    pk_prefix: str | None,
    since: str | None,
    limit: int | None = None,
    everything: bool = False,
    route: str | None = None,
) -> Filter:
    """The filter of a listing. A page asks for one row more than it shows, so it knows
    whether there are more. Raises UsageError for --all with --limit, or a bad --since."""
    from dockline.local.queries import Filter, parse_since

    if everything and limit is not None:
        raise UsageError("use --all or --limit, not both")
    shown = None if everything else (limit or DEFAULT_LIMIT)
    return Filter(
        key=key or None,
        pk_prefix=pk_prefix or None,
        since=parse_since(since, now=datetime.now(UTC)) if since else None,
        limit=None if shown is None else shown + 1,
        route=route or None,
    )


class Page:
    """The first ``limit`` of ``rows`` (all when None); ``more`` tells, once read, whether
    any row was left."""

    def __init__(self, rows: Iterable[Any], limit: int | None) -> None:
        self.rows, self.limit, self.more = rows, limit, False

    @classmethod
    def of(cls, rows: Iterable[Any], where: Filter) -> Page:
        """The page ``where`` asked for (its limit is one more than it shows)."""
        return cls(rows, None if where.limit is None else where.limit - 1)

    def __iter__(self) -> Iterator[Any]:
        for n, row in enumerate(self.rows):
            if self.limit is not None and n == self.limit:
                self.more = True
                return
            yield row

    def title(self, shown: int, what: str) -> str:
        if self.more:
            return f"the newest {shown} {what}; there are more: use --all, --limit N or a filter"
        return f"{shown} {what}, newest first"


@contextmanager
def stdout_may_close() -> Iterator[None]:
    """``dockline ledger list --all --json | head``: a reader that stops early ends the
    command quietly (exit 0), as for any other Unix filter."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at /dev/null so that cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


def print_tables(
    console: Console | LazyConsole,
    rows: Iterable[Any],
    title: str,
    build: Callable[[str], LiteralTable],
    add: Callable[[LiteralTable, Any], None],
) -> int:
    """``rows`` as tables of TABLE_ROWS, the first with the title and the header: a long
    listing is printed as it is read instead of being held whole. Returns the count."""
    shown = 0
    table = build(title)
    for row in rows:
        add(table, row)
        shown += 1
        if shown % TABLE_ROWS == 0:
            console.print(table)
            table = build("")
            table.show_header = False
    if shown % TABLE_ROWS or shown == 0:
        console.print(table)
    return shown


def show_page(
    console: Console | LazyConsole,
    page: Page,
    what: str,
    build: Callable[[str], LiteralTable],
    add: Callable[[LiteralTable, Any], None],
) -> None:
    """A page of up to TABLE_ROWS rows is read first, so its title can say whether there
    are more; a longer one is printed as it is read, and says so after its last row."""
    if page.limit is not None and page.limit <= TABLE_ROWS:
        rows = list(page)
        print_tables(console, rows, page.title(len(rows), what), build, add)
        return
    shown = print_tables(console, page, f"{what}, newest first", build, add)
    if page.more:
        say(console, f"the newest {shown} {what} shown; there are more: use --all or a filter")
