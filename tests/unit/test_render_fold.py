"""Issue 10, item 8: table cells never break a key mid-name."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from dockline.render import LiteralTable, visible

KEY = "incoming/2026/12/01/order-1001-resent.json"
LONG_NAME = "incoming/a-file-name-far-too-long-for-any-column-of-this-table-0123456789.json"


def _key_column(key: str, *, width: int) -> list[str]:
    """Print ``key`` in a table built like the CLI's (a folding key column with a minimum
    width, beside a status column) and return the key cell's lines."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    table = LiteralTable()
    table.add_column("key", min_width=16, overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_row(key, "failed")
    console.print(table)
    rows = [line.split("\u2502") for line in out.getvalue().splitlines() if line.startswith("\u2502")]
    return [row[1].strip() for row in rows if row[1].strip()]


def test_item8_a_key_folds_only_after_a_slash() -> None:
    # GIVEN a key wider than its column
    # WHEN it is shown in a 40-column table
    lines = _key_column(KEY, width=40)
    # THEN it takes more than one line, each line ends at a "/" but the last, and it reads whole
    assert len(lines) > 1
    assert all(line.endswith("/") for line in lines[:-1]), lines
    assert "".join(lines) == KEY


def test_item8_a_name_wider_than_the_column_is_cut_in_the_middle() -> None:
    lines = _key_column(LONG_NAME, width=40)
    # THEN the folder is its own line and the name keeps its start and its extension around "…"
    assert lines[0] == "incoming/"
    [name] = lines[1:]
    assert name.startswith("a-file-name") and name.endswith(".json") and "\u2026" in name


def test_item8_markup_and_controls_in_a_folded_key_stay_literal() -> None:
    lines = "".join(_key_column("incoming/[red]x[/red]/\x1b[1m.json", width=200))
    assert lines == "incoming/[red]x[/red]/\\x1b[1m.json"


@given(st.text(min_size=1, max_size=60).map(visible), st.integers(min_value=1, max_value=40))
def test_item8_cut_middle_fits_and_keeps_both_ends(text: str, width: int) -> None:
    from dockline.render import cut_middle  # new with item 8: imported here so the rest runs on older code

    shown = cut_middle(text, width)
    assert cell_len(shown) <= width or shown == text
    if cell_len(text) <= width:
        assert shown == text
    else:
        head, _, tail = shown.partition("\u2026")
        assert text.startswith(head) and text.endswith(tail)


def test_item8_prose_with_a_slash_loses_no_word() -> None:
    # GIVEN a reason that names a key, in a column narrower than the key's file name
    reason = "File failed: incoming/readings-of-today.ndjson: line 2"
    out = io.StringIO()
    table = LiteralTable()
    table.add_column("message", max_width=14)
    table.add_row(reason)
    Console(file=out, width=80, color_system=None).print(table)
    shown = "".join(line.split("\u2502")[1].strip() for line in out.getvalue().splitlines() if "\u2502" in line)
    # THEN every character is still there (folded, not cut), and the folder ends its line
    assert shown.replace(" ", "") == reason.replace(" ", "")
    assert "\u2026" not in shown
