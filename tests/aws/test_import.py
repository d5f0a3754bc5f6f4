"""Cold start: importing the handler builds nothing and pulls in no heavy extras."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import dockline.aws.handler as handler
heavy = sorted(m for m in sys.modules if m.startswith(("pydantic", "aws_lambda_powertools.utilities.parser",
                                                       "dockline.local", "dockline.cli", "typer", "rich", "watchdog")))
print("heavy", heavy)
print("engine", handler._engine)
import botocore.client
print("clients", [o for o in __import__("gc").get_objects() if isinstance(o, botocore.client.BaseClient)])
"""


def test_importing_the_handler_creates_no_client_and_loads_no_heavy_extras() -> None:
    # WHEN the handler module is imported in a fresh interpreter (as Lambda's init does)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    # THEN no engine and no boto3 client exist yet, and neither the Powertools parser
    # (pydantic: hundreds of ms) nor the CLI or local engine was imported
    assert "heavy []" in out
    assert "engine None" in out
    assert "clients []" in out
