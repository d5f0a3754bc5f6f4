"""An AWS-facing command on a machine with no AWS region set says so in one line.

Before: `dockline backfill` and `dockline status --aws` printed botocore's NoRegionError
traceback (found trying them as a new user would, on a laptop with no AWS profile)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "args",
    [["backfill", "--dry-run"], ["status", "--aws"], ["dlq", "list", "--aws"]],
    ids=["backfill", "status-aws", "dlq-aws"],
)
def test_no_region_is_one_line_not_a_traceback(tmp_path: Path, args: list[str]) -> None:
    # GIVEN no region anywhere: not in the environment, not in an AWS config file
    empty = tmp_path / "aws-config"
    empty.write_text("")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL")
    }
    env.update(AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty))
    # WHEN the command runs
    done = subprocess.run(
        [sys.executable, "-m", "dockline", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    # THEN it fails with one line naming what to set, and no traceback
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "no AWS region" in done.stderr and "AWS_REGION" in done.stderr
