"""The function's code asset: the dockline package as Lambda will import it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dockline.infra.asset import stage_function_code
from dockline.infra.wiring import HANDLER

IMPORT_AS_LAMBDA = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
module_name, _, function_name = sys.argv[2].rpartition(".")
module = importlib.import_module(module_name)
import dockline
print(json.dumps({
    "dockline": dockline.__file__,
    "callable": callable(getattr(module, function_name)),
    "heavy": sorted(m for m in sys.modules if m.split(".")[0] in ("aws_cdk", "jsii", "typer", "watchdog")
                    or m.startswith("dockline.infra") or m == "dockline.cli"),
}))
"""


def test_staged_code_imports_the_handler_without_cdk_or_cli(tmp_path: Path) -> None:
    # GIVEN the code staged exactly as synth stages it
    code = stage_function_code(tmp_path / "code")
    # WHEN a fresh interpreter imports the Lambda handler from it, as the Lambda runtime would
    env = {
        **os.environ,
        "TABLE_NAME": "events",
        "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:events-notify",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "dockline",
    }
    result = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_AS_LAMBDA, str(code), HANDLER],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # THEN the handler came from the staged copy, and nothing Lambda lacks was imported
    assert Path(seen["dockline"]).is_relative_to(code)
    assert seen["callable"]
    assert seen["heavy"] == []


def test_staging_replaces_what_was_there(tmp_path: Path) -> None:
    dest = tmp_path / "code"
    dest.mkdir()
    (dest / "stale.py").write_text("")
    stage_function_code(dest)
    assert not (dest / "stale.py").exists()
    assert (dest / "dockline" / "__init__.py").is_file()
