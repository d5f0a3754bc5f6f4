"""``python -m dockline`` runs the CLI."""

from __future__ import annotations

from dockline.cli import main

main()
