"""Issue 10, item 8, as a user meets it on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

CLI = Callable[..., subprocess.CompletedProcess[str]]


def test_item8_run_creates_the_prefix_folder_so_cp_works_on_a_fresh_data_dir(cli: CLI, tmp_path: Path) -> None:
    # GIVEN no data dir yet
    data_dir: Path = cli.data_dir  # type: ignore[attr-defined]
    # WHEN `dockline run --once` runs on it
    cli("run", "--once")
    # THEN bucket/incoming/ exists, empty, so the README's `cp x.json .../bucket/incoming/` works
    incoming = data_dir / "bucket" / "incoming"
    assert incoming.is_dir()
    assert list(incoming.iterdir()) == []
    (tmp_path / "reading.json").write_text('{"id": "r1", "t": 21.5}')
    subprocess.run(["cp", str(tmp_path / "reading.json"), f"{incoming}/"], check=True)
    cli("run", "--once")
    assert '"r1"' in cli("ledger", "list", "--json").stdout


def test_item8_run_creates_the_folder_of_a_custom_prefix_only(cli: CLI, tmp_path: Path) -> None:
    # GIVEN a prefix that is a folder plus a name start
    (tmp_path / "dockline.toml").write_text('[pipeline]\nprefix = "drop/box/in-"\n')
    # WHEN run once
    cli("run", "--once")
    # THEN only its folders are made, nothing inside them
    bucket: Path = cli.data_dir / "bucket"  # type: ignore[attr-defined]
    assert sorted(str(p.relative_to(bucket)) for p in bucket.rglob("*")) == ["drop", "drop/box"]


def test_item8_run_never_creates_the_prefix_folder_through_a_link(cli: CLI, tmp_path: Path) -> None:
    # GIVEN a bucket whose "incoming" is a link to a folder elsewhere... that lacks a subfolder
    (tmp_path / "dockline.toml").write_text('[pipeline]\nprefix = "incoming/deep/"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bucket: Path = cli.data_dir / "bucket"  # type: ignore[attr-defined]
    bucket.mkdir(parents=True)
    (bucket / "incoming").symlink_to(elsewhere)
    # WHEN run once
    cli("run", "--once")
    # THEN nothing was made through the link
    assert list(elsewhere.iterdir()) == []


def test_item8_put_keeps_the_umask_mode_like_a_plain_copy(tmp_path: Path) -> None:
    # GIVEN a umask of 002 (group-writable, as on a shared machine)
    source = tmp_path / "order.json"
    source.write_text('{"id": 1}')
    data_dir = tmp_path / "data"
    script = (
        "import os, sys; os.umask(0o002); from dockline.cli import main; "
        f"sys.argv = ['dockline', '--data-dir', {str(data_dir)!r}, 'put', {str(source)!r}]; main()"
    )
    # WHEN `dockline put` copies a file in
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, env=os.environ.copy())
    # THEN the object is 0666 & ~umask, as `cp` would leave it (not 0600)
    mode = (data_dir / "bucket" / "incoming" / "order.json").stat().st_mode & 0o777
    assert oct(mode) == oct(0o664)


def test_item8_run_once_strict_exits_1_when_a_file_failed(cli: CLI, tmp_path: Path) -> None:
    # GIVEN one good and one malformed file
    (tmp_path / "good.json").write_text('{"id": "g"}')
    (tmp_path / "bad.json").write_text('{"id": ')
    cli("put", str(tmp_path / "good.json"))
    cli("put", str(tmp_path / "bad.json"))
    # WHEN run once with --strict
    result = cli("run", "--once", "--strict", check=False)
    # THEN it exits 1 and the summary line says how many failed, on one line
    assert result.returncode == 1, result.stderr
    [summary] = [line for line in result.stderr.splitlines() if "files settled" in line]
    assert "1 processed, 1 failed" in summary
    assert summary.endswith("; exit 1 (--strict): 1 file failed")


def test_item8_run_once_without_strict_keeps_exit_0_for_failed_files(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    cli("put", str(tmp_path / "bad.json"))
    result = cli("run", "--once", check=False)
    assert result.returncode == 0, result.stderr
    assert "1 failed" in result.stderr
    assert "--strict" not in result.stderr


def test_item8_run_once_strict_exits_0_when_nothing_failed(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text('{"id": "g"}')
    cli("put", str(tmp_path / "good.json"))
    result = cli("run", "--once", "--strict", check=False)
    assert result.returncode == 0, result.stderr


def test_item8_strict_without_once_is_a_usage_error(cli: CLI) -> None:
    result = cli("run", "--strict", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "dockline: error: --strict needs --once (a watcher has no end to report on)"


def test_item8_demo_lists_files_in_the_order_they_were_put(cli: CLI, tmp_path: Path) -> None:
    from dockline.demo import SAMPLES

    # WHEN the demo runs (twice, in two fresh folders)
    for n in range(2):
        out = cli("demo", "--data-dir-out", str(tmp_path / f"demo{n}"), data=False).stdout
        table = out.split("What happened to each file")[1].split("Ledger:")[0]
        rows = [line.split("│")[1].strip() for line in table.splitlines() if line.count("│") > 2]
        # THEN the files table follows the put order, every time
        assert rows == [name for name, _ in SAMPLES], out
        # and the story's outcomes hold: the resent order is a duplicate, the edited one a conflict
        cells = [line.split("│") for line in table.splitlines() if line.count("│") > 2]
        statuses = {c[1].strip(): c[2].strip() for c in cells}
        assert statuses["order-1001-resent.json"] == "duplicate"
        assert statuses["order-1001-edited.json"] == "conflict"
