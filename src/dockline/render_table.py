"""The table for user data: every ``str`` cell literal (see ``dockline.render``).

Its own module because rich.table is loaded only by commands that print a table, never
by start-up (``run``, ``--help``): tests/cli/test_startup_imports.py holds that rule.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.style import StyleType
from rich.table import Table

from dockline.render import cell


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
