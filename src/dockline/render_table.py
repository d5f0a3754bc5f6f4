"""The table for user data: every ``str`` cell literal (see ``dockline.render``), and how
a cell folds.

Its own module because rich.table is loaded only by commands that print a table, never
by start-up (``run``, ``--help``): tests/cli/test_startup_imports.py holds that rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType
from rich.measure import Measurement
from rich.protocol import is_renderable
from rich.style import StyleType
from rich.table import Table
from rich.text import Text

from dockline.render import literal, visible


class LiteralTable(Table):
    """A rich Table whose ``add_row`` shows every ``str`` cell literally (see ``cell``).

    Tables of user data are built on this, so a new column cannot reintroduce markup
    by forgetting to escape: only our own code can add a styled cell, as a ``Text``.
    """

    def add_row(
        self,
        *renderables: RenderableType | None,
        style: StyleType | None = None,
        end_section: bool = False,
    ) -> None:
        super().add_row(*(cell(r) for r in renderables), style=style, end_section=end_section)


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
