from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m dockline --data-dir <tmp>/data ...` in a subprocess, as a user would."""
    data_dir = tmp_path / "data"

    def run(
        *args: str, data: bool = True, cwd: Path | None = None, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "dockline"]
        if data:
            argv += ["--data-dir", str(data_dir)]
        full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
        full_env.pop("DOCKLINE_DATA_DIR", None)
        result = subprocess.run(
            argv + list(args),
            check=False,
            capture_output=True,
            text=True,
            cwd=cwd or tmp_path,
            env=full_env,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"dockline {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    run.data_dir = data_dir  # type: ignore[attr-defined]
    return run
