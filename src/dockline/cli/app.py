"""The ``dockline`` Typer app, its sub-apps, the shared options and the output helpers.

Each command lives in the module of its idea (run, ledger, notifications, status, dlq,
aws); ``dockline.cli`` imports them all so they register on ``app``.
"""

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dockline import __version__
from dockline.errors import UsageError
from dockline.jsonx import dumps
from dockline.render import LazyConsole, literal, say

if TYPE_CHECKING:
    from rich.text import Text

    from dockline.config import Settings
    from dockline.render_table import LiteralTable

# Piped into a file or a CI log, tables get 160 columns instead of Rich's default 80
# (COLUMNS still wins); a terminal keeps its own width.
console = LazyConsole(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
# Errors and status lines are one line each: never folded at 80 columns when stderr is a
# file or a pipe (rich's default width there), so a long key stays on one line.
err = LazyConsole(stderr=True, soft_wrap=True)

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

    def settings(self) -> "Settings":
        from dockline.config import load_settings  # routes, schemas, toml: not for --help

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


def context_of(ctx: typer.Context) -> Context:
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


def new_table(title: str, *columns: tuple[str, int]) -> "LiteralTable":
    """A table that stays readable in 80 columns: (name, 0) never wraps, (name, n) folds
    but keeps at least n characters, (name, -1) takes the remaining width.

    Every str cell is shown literally (render.LiteralTable): keys, ids, reasons and
    payloads are user data, never markup; a styled cell is a Text built here."""
    from dockline.render_table import LiteralTable  # rich.table: only commands that print one

    table = LiteralTable(title=title)
    for name, width in columns:
        if width == 0:
            table.add_column(name, no_wrap=True)
        elif width < 0:
            table.add_column(name, ratio=1)
        else:
            table.add_column(name, min_width=width, overflow="fold")
    return table


def print_json(value: Any) -> None:
    sys.stdout.write(dumps(value, indent=True).decode() + "\n")


def status_style(status: str) -> str:
    return {
        "processed": "green",
        "failed": "red",
        "conflict": "yellow",
        "duplicate": "cyan",
        "superseded": "blue",  # a harmless race, not a failure: not red
    }.get(status, "white")


def status_cell(status: str) -> "Text":
    """The status cell: the state's own words, coloured by _status_style."""
    return literal(status, style=status_style(status))
