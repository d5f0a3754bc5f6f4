"""Issue 10, item 8: dead letters named by key or by a unique id prefix (local engine)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

CLI = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def two_letters(cli: CLI, tmp_path: Path) -> list[dict[str, str]]:
    """GIVEN incoming/order-a.json and incoming/order-b.json failed and were dead-lettered."""
    for name in ("order-a.json", "order-b.json"):
        (tmp_path / name).write_text('{"id": ')
        cli("put", str(tmp_path / name))
    cli("run", "--once")
    letters: list[dict[str, str]] = json.loads(cli("dlq", "list", "--json").stdout)
    assert sorted(letter["key"] for letter in letters) == ["incoming/order-a.json", "incoming/order-b.json"]
    return letters


def _letter(letters: list[dict[str, str]], key: str) -> dict[str, str]:
    return next(letter for letter in letters if letter["key"] == key)


@pytest.mark.parametrize(
    "name",
    [
        "incoming/order-a.json",  # the key
        "local/incoming/order-a",  # a unique prefix of the id
        "incoming/order-a.json@{v8}",  # key@ and a few hex digits of the version (the list's short id)
    ],
)
def test_item8_dlq_show_takes_a_key_or_a_unique_prefix(cli: CLI, two_letters: list[dict[str, str]], name: str) -> None:
    letter = _letter(two_letters, "incoming/order-a.json")
    name = name.format(v8=letter["version"][:8])
    # WHEN the letter is shown by that name
    shown = json.loads(cli("dlq", "show", name, "--json").stdout)
    # THEN it is the one letter meant
    assert shown["id"] == letter["id"]


def test_item8_dlq_redrive_takes_a_unique_prefix(cli: CLI, two_letters: list[dict[str, str]]) -> None:
    # WHEN order-a is redriven (dry run) by the key
    out = cli("dlq", "redrive", "incoming/order-a.json", "--dry-run").stdout
    # THEN only that letter is planned, named by its full id
    letter = _letter(two_letters, "incoming/order-a.json")
    assert out.strip() == f"would reprocess (unchanged): incoming/order-a.json ({letter['id']})"


@pytest.mark.parametrize("command", ["show", "redrive"])
def test_item8_ambiguous_prefix_is_one_line_with_candidates(
    cli: CLI, two_letters: list[dict[str, str]], command: str
) -> None:
    # WHEN a prefix shared by both letters is given
    result = cli("dlq", command, "local/incoming/order-", check=False)
    # THEN exit 2 and one line naming both candidates; nothing redriven
    assert result.returncode == 2, result
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("dockline: error: 'local/incoming/order-' names 2 dead letters: ")
    assert "incoming/order-a.json@" in line
    assert "incoming/order-b.json@" in line
    assert len(json.loads(cli("dlq", "list", "--json").stdout)) == 2


def test_item8_an_empty_name_matches_nothing(cli: CLI, two_letters: list[dict[str, str]]) -> None:
    result = cli("dlq", "show", "", check=False)
    assert result.returncode == 2
    assert "no dead letter with id ''" in result.stderr


def test_item8_dlq_list_shows_short_ids_that_show_accepts(cli: CLI, two_letters: list[dict[str, str]]) -> None:
    letter = _letter(two_letters, "incoming/order-a.json")
    short = f"incoming/order-a.json@{letter['version'][:12]}"
    # WHEN the dead letters are listed as a table
    table = cli("dlq", "list").stdout
    # THEN the id column has the short id, not the 64 hex digits that wrapped over lines
    assert short in table
    assert letter["version"] not in table
    # and that short id names the letter
    assert json.loads(cli("dlq", "show", short, "--json").stdout)["id"] == letter["id"]
