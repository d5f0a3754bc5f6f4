"""Text is text: user data reaches the terminal literally, never as markup or control codes.

Keys, ids, reasons and payloads come from whoever can write to the bucket. Printed
through rich as a plain ``str`` they are read as markup (``[/b]`` crashes the table,
``[red]x[/red]`` turns red, ``:smile:`` becomes an emoji) and their control characters
reach the terminal raw (an ESC sequence can recolour it or set its title; CR can
overwrite what was printed; U+202E reverses the text after it).

So user data is printed only as a ``rich.text.Text`` (never parsed as markup or
emoji codes) whose characters are first made visible:

- every character Python's ``repr`` would escape is shown the way ``repr`` shows it:
  C0 and C1 controls and DEL (``\\x1b``, ``\\x9b``, ``\\x7f``; ``\\t``, ``\\n``, ``\\r``),
  format characters such as bidi overrides and zero-width ones (``\\u202e``, ``\\u200b``),
  line and paragraph separators, lone surrogates (a file name that was not UTF-8),
  unassigned and private-use code points, and spaces other than U+0020 (``\\xa0``);
- everything else, backslashes and quotes included, is shown as it is, so an ordinary
  key reads exactly as it was written. (A key may therefore contain the four
  characters ``\\x1b`` and look like an escaped ESC; what matters is that the real ESC
  never reaches the terminal. ``--json`` output is exact.)
"""

from __future__ import annotations

import logging
import os
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.style import StyleType
    from rich.text import Text

    # "as": explicit re-exports, so mypy types the old imports from here
    from dockline.render_table import Folded as Folded  # noqa: PLC0414
    from dockline.render_table import LiteralTable as LiteralTable  # noqa: PLC0414
    from dockline.render_table import cell as cell  # noqa: PLC0414
    from dockline.render_table import cut_middle as cut_middle  # noqa: PLC0414
    from dockline.render_table import visible_text as visible_text  # noqa: PLC0414

# Tables and their cells live in render_table, with rich: only commands that print one load
# it. Old imports from here keep working, loading it on first use.
_IN_TABLE = frozenset({"LiteralTable", "cell", "Folded", "cut_middle", "visible_text"})


def __getattr__(name: str) -> Any:
    if name in _IN_TABLE:
        from dockline import render_table

        return getattr(render_table, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def visible(text: str) -> str:
    """``text`` with every non-printable character replaced by its escape (see the module)."""
    if text.isprintable():  # the common case: one C-level scan, no copy
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def literal(text: str, style: StyleType = "") -> Text:
    """A Text showing ``text`` exactly, control characters as escapes; never markup."""
    from rich.text import Text

    return Text(visible(text), style=style)


def say(console: Console | LazyConsole, text: str, *, style: StyleType = "") -> None:
    """Print ``text`` literally as one line: no markup, no emoji codes, no highlighting,
    control characters escaped (so an embedded newline cannot start a second line), and
    never wrapped by rich at the console's width (a terminal may still fold it on screen)."""
    if not style and isinstance(console, LazyConsole) and console.plain_line(visible(text)):
        return
    console.print(literal(text, style=style), soft_wrap=True, highlight=False)


# rich's own switches for what a terminal is (Console.is_terminal): with none of them set, a
# stream that is not a tty is not a terminal, and rich is not needed to say so.
_TERMINAL_SWITCHES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES")


class LazyConsole:
    """A rich ``Console`` made on first use (``.rich``; any other attribute is the Console's).

    Importing rich costs a command ~30 ms of start-up, and most runs only say plain lines
    (``run --once`` ends with one): until something needs rich, ``say`` writes an unstyled
    line itself, the same characters rich would print for it (no codes: it has no style),
    and ``is_terminal`` answers a plain pipe or file itself. The stream is looked up at each
    write, as rich does (sys.stdout or sys.stderr of the moment), so captured output works.
    """

    def __init__(self, *, stderr: bool = False, **options: Any) -> None:
        self._stderr = stderr
        self._options = options
        self._console: Console | None = None

    @property
    def rich(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, **self._options)
        return self._console

    @property
    def file(self) -> IO[str]:
        if self._console is not None:
            return self._console.file
        fixed: IO[str] | None = self._options.get("file")
        return fixed if fixed is not None else sys.stderr if self._stderr else sys.stdout

    @property
    def is_terminal(self) -> bool:
        if (
            self._console is None
            and "force_terminal" not in self._options
            and not any(os.environ.get(s) is not None for s in _TERMINAL_SWITCHES)
        ):
            isatty = getattr(self.file, "isatty", None)
            try:
                if isatty is not None and not isatty():
                    return False
            except ValueError:  # a closed stream: rich says no too
                return False
        return self.rich.is_terminal

    def plain_line(self, text: str) -> bool:
        """Write ``text`` and a newline without rich, while rich is not loaded (False once it is)."""
        if self._console is not None:
            return False
        stream = self.file
        stream.write(text + "\n")
        stream.flush()
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)


def rich_console(console: Console | LazyConsole) -> Console:
    """The rich Console behind ``console`` (for rich's own displays: a bar, a live view)."""
    return console.rich if isinstance(console, LazyConsole) else console


class LineHandler(logging.Handler):
    """Writes each log record as one literal line (``dockline: warning: ...``) on ``console``.

    Log messages carry text from outside: keys, and what a webhook or SMTP server
    answered (an HTTP reason phrase can hold an ESC sequence). Python's fallback handler
    would write them raw; this one escapes them like every other line, and keeps an
    exception to its one-line ``Type: message`` (a traceback is a bug to report, not
    output).
    """

    def __init__(self, console: Console | LazyConsole, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message += f" ({type(exc).__name__}: {exc})"
            say(self.console, f"dockline: {record.levelname.lower()}: {message}")
        except Exception:  # noqa: BLE001 - logging must never raise; this is the logging module's own rule
            self.handleError(record)
