"""The ``dockline`` command: thin wrappers that parse, call one library function, print.

Errors raised as DocklineError become one line on stderr and a non-zero exit code
(2 for bad usage or configuration, 1 otherwise); a traceback is a bug.
"""

import logging
import os
import sys

# The command modules register on ``app`` when imported; the order is --help's order.
# isort: off
from dockline.cli import run, try_, status, console, notifications, ledger, dlq, reprocess, aws  # noqa: F401

# isort: on
from dockline.cli.app import app, err
from dockline.errors import ConfigError, DocklineError, UsageError
from dockline.render import LineHandler, say

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: one-line errors, never a traceback."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    # Warnings from the library (a failed delivery, with the receiver's answer) are
    # printed like errors: one literal line each, never raw.
    logging.getLogger("dockline").addHandler(LineHandler(err))
    try:
        app()
    except (UsageError, ConfigError) as exc:
        say(err, f"dockline: error: {exc}")
        sys.exit(2)
    except DocklineError as exc:
        say(err, f"dockline: error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
