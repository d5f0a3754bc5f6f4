"""cfn-lint (with the serverless rules) and checkov on every synthesized template.

checkov pins many packages, so it lives in its own venv (``.venv-checkov``, see the Makefile);
the test finds it there or through ``CHECKOV_BIN``. Under CI a missing linter fails the
suite: a security check that silently does not run is worse than none.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import Synthesized

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SERVERLESS_RULES = "cfn_lint_serverless.rules"
# Offline and quiet: no guideline download, no PyPI version check, nothing uploaded (no API key).
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "LOG_LEVEL": "WARNING"}


def missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is not installed: the project's set-up (make setup) must install it")
    pytest.skip(f"{what} is not installed here (run make setup); CI fails instead of skipping")


def has_serverless_rules() -> bool:
    return importlib.util.find_spec("cfn_lint_serverless") is not None


def test_cfn_lint_serverless_rules_are_installed() -> None:
    if not has_serverless_rules():
        missing("cfn-lint-serverless")


def test_cfn_lint_reports_no_errors(any_variant: Synthesized) -> None:
    # GIVEN cfn-lint, with the serverless rules (tracing, async destinations, redrive...) if installed
    command = [sys.executable, "-m", "cfnlint", "--format", "json"]
    if has_serverless_rules():
        command += ["--append-rules", SERVERLESS_RULES]
    # WHEN it lints the synthesized template
    result = subprocess.run([*command, "--", str(any_variant.path)], capture_output=True, text=True, check=False)
    # THEN it finds no error (exit code bit 2 = error)
    matches = json.loads(result.stdout or "[]")
    errors = [m for m in matches if m["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)
    assert result.returncode & 2 == 0, result.stderr


def checkov_bin() -> Path | None:
    path = Path(os.environ.get("CHECKOV_BIN") or REPO / ".venv-checkov" / "bin" / "checkov")
    return path if path.is_file() else None


@pytest.fixture(scope="module")
def checkov_report(synthesized: dict[str, Synthesized]) -> dict:
    binary = checkov_bin()
    if binary is None:
        missing(f"checkov ({REPO / '.venv-checkov/bin/checkov'} or $CHECKOV_BIN)")
    files = [arg for s in synthesized.values() for arg in ("-f", str(s.path))]
    result = subprocess.run(
        [str(binary), *files, "--framework", "cloudformation", "--skip-download", "--output", "json", "--compact"],
        capture_output=True,
        text=True,
        env={**os.environ, **CHECKOV_ENV},
        check=False,
        timeout=300,
    )
    # exit code 1 means failed checks; anything else non-zero means checkov itself broke
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_finds_no_failed_check(checkov_report: dict) -> None:
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in checkov_report["results"]["failed_checks"]]
    assert not failed, failed
    assert checkov_report["summary"]["parsing_errors"] == 0
    # it really looked: dozens of checks ran on four templates
    assert checkov_report["summary"]["passed"] > 100


def test_checkov_skips_only_with_a_written_reason(checkov_report: dict) -> None:
    skipped = checkov_report["results"]["skipped_checks"]
    assert skipped, "expected the documented suppressions to show up as skipped"
    for check in skipped:
        comment = check["check_result"].get("suppress_comment", "")
        assert len(comment) > 20, check["check_id"]
    assert {c["check_id"] for c in skipped} <= {"CKV_AWS_18", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}


def test_every_suppression_in_the_templates_has_a_reason(any_variant: Synthesized) -> None:
    for resource in any_variant.body["Resources"].values():
        metadata = resource.get("Metadata", {})
        for skip in metadata.get("checkov", {}).get("skip", []):
            assert skip["id"] and len(skip["comment"]) > 20
        cfn_lint = metadata.get("cfn-lint", {})
        ignored = cfn_lint.get("config", {}).get("ignore_checks", [])
        assert set(ignored) == set(cfn_lint.get("reasons", {}))
        assert all(len(reason) > 20 for reason in cfn_lint.get("reasons", {}).values())
