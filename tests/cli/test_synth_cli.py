"""`dockline synth` as a user runs it: offline, no AWS credentials, one line on bad input."""

from __future__ import annotations

import json
from pathlib import Path


def test_synth_direct_mode_writes_the_template_without_credentials(cli, tmp_path: Path) -> None:
    out = tmp_path / "assembly"
    env = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_PROFILE": "",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    result = cli("synth", "--out", str(out), "--mode", "direct", env=env)
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("wrote ")]
    template = json.loads(Path(line.removeprefix("wrote ")).read_text())
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert {"AWS::S3::Bucket", "AWS::Lambda::Function", "AWS::DynamoDB::Table", "AWS::SNS::Topic"} <= kinds
    assert "AWS::Lambda::EventSourceMapping" not in kinds  # direct: S3 invokes the function itself
    assert "Traceback" not in result.stderr


def test_synth_with_a_bad_mode_is_one_line(cli, tmp_path: Path) -> None:
    result = cli("synth", "--out", str(tmp_path / "x"), "--mode", "sideways", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "dockline: error: --mode must be 'queue' or 'direct'"
