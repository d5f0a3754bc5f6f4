"""The Lambda function's code: the dockline package, staged into a folder. No aws_cdk import.

Why a staged folder and not Docker bundling: Docker is not always there (it is not in CI),
and dockline itself is pure Python. What it imports on Lambda is the standard library,
boto3 (in the Lambda runtime), Powertools (the AWS-published layer, see ``function.py``)
and, optionally, orjson: the one compiled wheel, vendored for arm64 only by ``deploy``
because it needs PyPI. Without it dockline falls back to the standard ``json`` module.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dockline
from dockline.errors import DocklineError

LAMBDA_PYTHON_VERSION = "3.13"
# Vendored only on request: compiled wheels for the function's platform (arm64, CPython 3.13).
VENDORED_WHEELS: tuple[str, ...] = ("orjson>=3.9,<4",)

# Never shipped to Lambda: the CDK code (aws_cdk must never be imported there), the CLI and
# `python -m dockline` (typer, rich), the local engine (watchdog), the local console (starlette,
# 210 KB of Chart.js) and synth's packaging of the user's config: the handler imports none.
_EXCLUDED = ("infra", "cli", "__main__.py", "local", "console", "packaging.py", "__pycache__", "*.pyc", "*.pyo")


class AssetError(DocklineError):
    """The function's code could not be staged."""


def package_source() -> Path:
    """The folder of the dockline package this process imported (src/dockline in a checkout)."""
    return Path(dockline.__file__).resolve().parent


def stage_function_code(dest: Path, *, vendor_wheels: bool = False, extra_wheels: tuple[str, ...] = ()) -> Path:
    """Fill ``dest`` with the importable ``dockline`` package (and, if asked, the arm64 wheels
    of ``VENDORED_WHEELS`` and ``extra_wheels``, e.g. jsonschema for routes with a schema);
    return ``dest``.

    Raises AssetError when the package is incomplete or the wheels cannot be fetched.
    """
    source = package_source()
    if not (source / "aws" / "handler.py").is_file():
        raise AssetError(f"{source}/aws/handler.py is missing: the Lambda entry point is not in this install")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copytree(source, dest / "dockline", ignore=shutil.ignore_patterns(*_EXCLUDED))
    if vendor_wheels:
        _vendor(dest, (*VENDORED_WHEELS, *extra_wheels))
    return dest


def _vendor(dest: Path, requirements: tuple[str, ...]) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(dest),
        "--platform",
        "manylinux2014_aarch64",
        "--platform",  # jsonschema-rs ships only this tag for arm64; Lambda's python3.13 has glibc 2.34
        "manylinux_2_28_aarch64",
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--only-binary=:all:",
        *requirements,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise AssetError(f"could not download arm64 wheels for the function ({last}); check access to PyPI")
