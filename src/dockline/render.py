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
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType
from rich.measure import Measurement
from rich.protocol import is_renderable
from rich.style import StyleType
from rich.text import Text

if TYPE_CHECKING:
    # "as": an explicit re-export, so mypy types the old imports from here
    from dockline.render_table import LiteralTable as LiteralTable  # noqa: PLC0414


def __getattr__(name: str) -> Any:
    # LiteralTable lives in render_table: rich.table costs start-up ~4 ms, and only commands
    # that print a table need it. Old imports from here keep working, loading it on first use.
    if name == "LiteralTable":
        from dockline.render_table import LiteralTable

        return LiteralTable
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
    return Text(visible(text), style=style)


def say(console: Console, text: str, *, style: StyleType = "") -> None:
    """Print ``text`` literally as one line: no markup, no emoji codes, no highlighting,
    control characters escaped (so an embedded newline cannot start a second line), and
    never wrapped by rich at the console's width (a terminal may still fold it on screen)."""
    console.print(literal(text, style=style), soft_wrap=True, highlight=False)


def cell(value: Any) -> RenderableType:
    """A table cell: a ``str`` (or anything else but a ready-made renderable) becomes
    literal text, folded only after ``/`` or at spaces when it holds a ``/`` (a key, a pk,
    an id: see ``Folded``). A ``Text`` keeps its styles and its line breaks (our own code
    may build a multi-line cell), but its other control characters are escaped too:
    ``Text(key)`` is safe from markup, not from ESC. Other rich renderables are kept as built."""
    if isinstance(value, str):
        return Folded(value) if "/" in value else literal(value)
    if value is None:
        return Text("")
    if isinstance(value, Text):
        return visible_text(value)
    if is_renderable(value):
        renderable: RenderableType = value
        return renderable
    return literal(str(value))


def visible_text(text: Text) -> Text:
    """``text`` with every non-printable character but LF escaped, styles kept."""
    if all(line.isprintable() for line in text.plain.split("\n")):
        return text
    # Cut at every style boundary, escape each piece, and put the styles back on the
    # (possibly longer) escaped piece.
    offsets = sorted({span.start for span in text.spans} | {span.end for span in text.spans})
    shown = text.blank_copy()
    for piece in text.divide(offsets):
        start = len(shown)
        shown.append("\n".join(visible(line) for line in piece.plain.split("\n")))
        for span in piece.spans:
            shown.stylize(span.style, start, len(shown))
    return shown


# A piece a line may end after: up to and including a "/" or a run of spaces.
_PIECE = re.compile(r"[^/\s]*(?:/|\s+)|[^/\s]+")
_CUT = "\u2026"  # …


class Folded:
    """Text (a key, most often) that never breaks mid-name in a table cell.

    Lines break only after a ``/`` or at spaces. In a key (text without spaces) a name
    still wider than the cell is cut in the middle with ``…``, keeping its start and its
    end (where a file name's distinctive part and its extension are); in prose (a reason,
    a message) such a word is folded instead, so no word of it is lost. In a ``no_wrap``
    column the whole text is one line, cut in the middle when too wide. Shown literally like ``literal``:
    control characters escaped, never markup. rich's own ``overflow="fold"`` breaks
    anywhere, ``incoming/ord`` + ``er-1001.json``; this is what the tables use instead.
    """

    def __init__(self, text: str, style: StyleType = "") -> None:
        self.text = visible(text)
        self.style = style
        self.pieces: list[str] = _PIECE.findall(self.text) or [""]
        self.is_key = len(self.pieces) == 1 or not any(ch.isspace() for ch in self.text)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widest = max(cell_len(piece.rstrip()) for piece in self.pieces)
        return Measurement(min(widest, options.max_width), min(cell_len(self.text), options.max_width))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        width = max(1, options.max_width)
        lines = [cut_middle(self.text, width)] if options.no_wrap else self.lines(width)
        yield Text("\n".join(lines), style=self.style, no_wrap=True, overflow="crop")

    def lines(self, width: int) -> list[str]:
        """The text packed into lines at most ``width`` cells wide (see the class)."""
        lines: list[str] = []
        line = ""
        for piece in self.pieces:
            if line and cell_len((line + piece).rstrip()) > width:
                lines.append(line.rstrip())
                line = ""
            line += piece
            if cell_len(line.rstrip()) > width:  # one piece alone is too wide
                if self.is_key:
                    lines.append(cut_middle(line.rstrip(), width))
                    line = ""
                else:
                    *whole, line = _fold(line, width)
                    lines.extend(whole)
        if line.rstrip() or not lines:
            lines.append(line.rstrip())
        return lines


def cut_middle(text: str, width: int) -> str:
    """``text`` if it fits in ``width`` cells, else its start and end around ``…``."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return _CUT[:width]
    room = width - 1
    head_room = (room + 1) // 2
    head = _fit(text, head_room)
    tail = _fit(text[::-1], room - cell_len(head))[::-1]
    return head + _CUT + tail


def _fold(text: str, width: int) -> list[str]:
    """``text`` cut into lines of at most ``width`` cells (the last may be shorter)."""
    lines: list[str] = []
    while cell_len(text) > width:
        head = _fit(text, width) or text[0]
        lines.append(head)
        text = text[len(head) :]
    return [*lines, text]


def _fit(text: str, width: int) -> str:
    """The longest start of ``text`` at most ``width`` cells wide."""
    used = 0
    for index, ch in enumerate(text):
        used += cell_len(ch)
        if used > width:
            return text[:index]
    return text


class LineHandler(logging.Handler):
    """Writes each log record as one literal line (``dockline: warning: ...``) on ``console``.

    Log messages carry text from outside: keys, and what a webhook or SMTP server
    answered (an HTTP reason phrase can hold an ESC sequence). Python's fallback handler
    would write them raw; this one escapes them like every other line, and keeps an
    exception to its one-line ``Type: message`` (a traceback is a bug to report, not
    output).
    """

    def __init__(self, console: Console, level: int = logging.WARNING) -> None:
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
