"""Issue 8, Why 12: the rendering rules, unit by unit (the CLI is tested in tests/cli/test_text_is_text.py)."""

from __future__ import annotations

import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from dockline.render import LiteralTable, cell, literal, say, visible


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("incoming/a.json", "incoming/a.json"),
        ("[red]x[/red] [/b] :smile:", "[red]x[/red] [/b] :smile:"),  # markup is not visible()'s business
        ("a\\b 'q' \"d\"", "a\\b 'q' \"d\""),  # backslashes and quotes stay as written
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
        ("a\r\nb\tc", "a\\r\\nb\\tc"),
        ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b"),  # NUL, DEL, C1 NEL and CSI
        ("abc\u202edef", "abc\\u202edef"),  # right-to-left override
        ("\u200b\u2028\u2029\ufeff", "\\u200b\\u2028\\u2029\\ufeff"),  # zero width, separators, BOM
        ("a\xa0b", "a\\xa0b"),  # a space that is not U+0020
        ("name-\udcff.json", "name-\\udcff.json"),  # a file name that was not UTF-8 (surrogateescape)
        ("tag\U000e0041", "tag\\U000e0041"),  # invisible tag characters
        ("grüße/日本語 😀.json", "grüße/日本語 😀.json"),
    ],
)
def test_why12_visible_escapes_exactly_the_unprintable(raw: str, shown: str) -> None:
    assert visible(raw) == shown


@given(st.text())
def test_why12_visible_text_is_always_printable(text: str) -> None:
    shown = visible(text)
    assert shown.isprintable()
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in shown)


@given(st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")) | st.just(" ")))
def test_why12_printable_text_is_shown_unchanged(text: str) -> None:
    assert visible(text) == text


def _console(width: int = 100) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, color_system="standard", width=width), out


def test_why12_a_literal_table_shows_markup_as_written_and_keeps_our_styles() -> None:
    # GIVEN a table with user text holding markup and a status cell styled by us
    console, out = _console()
    table = LiteralTable()
    for name in ("key", "status", "payload"):
        table.add_column(name)
    table.add_row("[red]x[/red]", Text("failed", style="red"), '{"v": "[/b] :smile:"}')

    # WHEN it is printed on a colour terminal
    console.print(table)

    # THEN the user text is as written, and only our cell is red
    printed = out.getvalue()
    assert "[red]x[/red]" in printed and '{"v": "[/b] :smile:"}' in printed
    assert "\x1b[31mfailed" in printed
    assert printed.count("\x1b[31m") == 1


def test_why12_a_plain_table_would_have_crashed_on_the_same_row() -> None:
    # The reason LiteralTable exists: a plain Table reads str cells as markup.
    console, _out = _console()
    from rich.errors import MarkupError
    from rich.table import Table

    table = Table("payload")
    table.add_row('{"v": "[/b]"}')
    with pytest.raises(MarkupError):
        console.print(table)


def test_why12_cells_other_than_str() -> None:
    assert cell(None).plain == ""  # type: ignore[union-attr]
    assert cell(3).plain == "3"  # type: ignore[union-attr]
    styled = Text("ok", style="green")
    assert cell(styled) is styled
    assert cell("\x1b[1m").plain == "\\x1b[1m"  # type: ignore[union-attr]


def test_why13_say_prints_one_unwrapped_literal_line() -> None:
    # GIVEN a narrow console and a long message with spaces, markup and control characters
    console, out = _console(width=40)
    message = "dockline: error: " + "word " * 30 + "[/b] :smile: \x1b]0;t\x07 a\nb"

    # WHEN it is said
    say(console, message)

    # THEN it is one line, as written, with the control characters escaped
    printed = out.getvalue()
    assert printed.count("\n") == 1
    assert printed.rstrip("\n").endswith("[/b] :smile: \\x1b]0;t\\x07 a\\nb")
    assert "\x1b]" not in printed


def test_why12_literal_keeps_a_style() -> None:
    text = literal("[b]x\r", style="bold")
    assert text.plain == "[b]x\\r" and str(text.style) == "bold"


def test_why12_a_text_cell_keeps_styles_and_line_breaks_but_escapes_other_controls() -> None:
    # GIVEN a Text built from user data (safe from markup, not from ESC), styled in part
    text = Text("ok\x1b]0;t\x07")
    text.append("\nred\rline", style="red")

    # WHEN it goes into a literal table
    shown = cell(text)

    # THEN its control characters are escaped, its line break and its style kept
    assert isinstance(shown, Text)
    # (rich's Text drops BEL and CR itself when built; ESC it keeps, and we escape it)
    assert shown.plain == "ok\\x1b]0;t\nredline"
    [span] = shown.spans
    assert shown.plain[span.start : span.end].startswith("\nred") and str(span.style) == "red"


def test_why12_a_printable_text_cell_is_kept_as_is() -> None:
    text = Text("two\nlines", style="bold")
    assert cell(text) is text


# -- issue 11, start-up: a plain line is written without rich, exactly as rich prints it ------
@given(st.text(max_size=300))
def test_start_up_a_plain_line_is_what_rich_would_print(text: str) -> None:
    # GIVEN any text, said once through a LazyConsole (rich not made yet) and once through
    # rich itself, on a pipe and on a terminal, at a narrow width
    from dockline.render import LazyConsole

    for force_terminal in (False, True):
        lazy_out, rich_out = io.StringIO(), io.StringIO()
        lazy = LazyConsole(file=lazy_out, soft_wrap=True, width=20)
        say(lazy, text)
        real = Console(file=rich_out, soft_wrap=True, width=20, force_terminal=force_terminal)
        say(real, text)
        # THEN the bytes are the same, and rich was never made for the lazy one
        assert lazy_out.getvalue() == rich_out.getvalue()
        assert lazy._console is None
