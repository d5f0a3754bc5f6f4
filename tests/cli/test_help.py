"""Every command has help text and is documented in the README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from dockline.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands() -> list[tuple[str, Any]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, command: Any) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}".strip(), sub)
        else:
            found.append((prefix, command))

    walk("", root)
    return found


COMMANDS = _commands()


def test_the_cli_has_the_contracted_commands() -> None:
    names = {name for name, _ in COMMANDS}
    assert {
        "put",
        "run",
        "ledger list",
        "ledger get",
        "files list",
        "notifications list",
        "demo",
        "dlq list",
        "dlq show",
        "dlq redrive",
        "synth",
        "deploy",
    } <= names


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_and_is_in_the_readme(name: str, command: Any) -> None:
    assert command.help and len(command.help.strip()) > 15, name
    for param in command.params:
        if param.param_type_name == "option":
            assert param.help, f"{name} {param.opts} has no help"
    assert f"dockline {name}" in README.read_text(encoding="utf-8"), f"README does not show `dockline {name}`"


def test_python_dash_m_and_help_work() -> None:
    result = subprocess.run([sys.executable, "-m", "dockline", "--help"], capture_output=True, text=True, check=True)
    for name in ("put", "run", "ledger", "files", "notifications", "dlq", "demo", "synth", "deploy"):
        assert name in result.stdout
