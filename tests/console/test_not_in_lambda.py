"""The console (a web server and 210 KB of Chart.js) is never shipped in the Lambda asset."""

from __future__ import annotations

from pathlib import Path

from dockline.infra.asset import stage_function_code


def test_the_function_asset_leaves_the_console_out(tmp_path: Path) -> None:
    # GIVEN the function's code staged as synth stages it
    code = stage_function_code(tmp_path / "code")
    # THEN the handler is there and the console is not
    assert (code / "dockline" / "aws" / "handler.py").is_file()
    assert not (code / "dockline" / "console").exists()
    assert not list(code.rglob("chart.umd.min.js"))
