"""``synth`` and ``deploy`` as the CLI calls them: offline synth, clear one-line errors, the CDK call."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from dockline.config import AwsSettings, Settings
from dockline.errors import ConfigError, DocklineError
from dockline.infra import DeployError, SynthError, deploy, synth
from dockline.infra.commands import deploy_command

NO_AWS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_REGION": None,
    "AWS_DEFAULT_REGION": None,
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_WEB_IDENTITY_TOKEN_FILE": None,
}


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment with no AWS credentials anywhere (and no metadata-service lookup)."""
    for name in NO_AWS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


@pytest.fixture
def fake_npx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `npx` on PATH that records its arguments instead of downloading the CDK CLI."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "npx-args.json"
    script = bin_dir / "npx"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\nsys.exit(0)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    node_dir = Path(subprocess.run(["which", "node"], capture_output=True, text=True, check=True).stdout).parent
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{node_dir}")
    return record


def test_synth_needs_no_credentials_and_writes_a_template_per_stack(no_aws: Path, tmp_path: Path) -> None:
    # GIVEN no AWS credentials at all / WHEN synthesizing
    (template,) = synth(Settings(aws=AwsSettings(stack_name="Offline")), tmp_path / "out")
    # THEN a CloudFormation template named after the stack exists
    assert template == tmp_path / "out" / "Offline.template.json"
    assert "AWS::Lambda::Function" in template.read_text()


def test_synth_refuses_bad_settings_before_starting_node(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stack_name"):
        synth(Settings(aws=AwsSettings(stack_name="bad_name")), tmp_path)
    assert not list(tmp_path.iterdir())


def test_synth_without_node_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SynthError, match=r"Node\.js"):
        synth(Settings(), tmp_path / "out")


def test_deploy_without_npx_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DeployError, match="npx") as caught:
        deploy(Settings(), out_dir=tmp_path / "out", approve=True, profile=None)
    assert "\n" not in str(caught.value)


def test_deploy_without_credentials_says_so(no_aws: Path, fake_npx: Path, tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="no AWS credentials"):
        deploy(Settings(), out_dir=tmp_path / "out", approve=True, profile=None, vendor_wheels=False)
    assert not fake_npx.exists()


def test_deploy_with_an_unknown_profile_says_so(no_aws: Path, fake_npx: Path, tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="nope"):
        deploy(Settings(), out_dir=tmp_path / "out", approve=True, profile="nope", vendor_wheels=False)


def test_deploy_without_a_region_says_so(
    no_aws: Path, fake_npx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(DeployError, match="region"):
        deploy(Settings(), out_dir=tmp_path / "out", approve=True, profile=None, vendor_wheels=False)


def test_deploy_synthesizes_then_runs_cdk_deploy_on_the_assembly(no_aws: Path, fake_npx: Path, tmp_path: Path) -> None:
    # GIVEN a profile with credentials and a region
    (no_aws / "credentials").write_text("[ops]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    (no_aws / "config").write_text("[profile ops]\nregion = eu-west-1\n")
    out_dir = tmp_path / "cdk.out"
    settings = Settings(aws=replace(AwsSettings(), stack_name="Prod"))
    # WHEN deploying with approval
    code = deploy(settings, out_dir=out_dir, approve=True, profile="ops", vendor_wheels=False)
    # THEN the CDK CLI ran on the synthesized assembly, for this stack, with the profile
    assert code == 0
    args = json.loads(fake_npx.read_text())
    assert args[:4] == ["--yes", "aws-cdk@2", "deploy", "Prod"]
    assert args[args.index("--app") + 1] == str(out_dir)
    assert args[args.index("--require-approval") + 1] == "never"
    assert args[args.index("--profile") + 1] == "ops"
    assert (out_dir / "Prod.template.json").is_file()


def test_deploy_without_approval_lets_the_cdk_ask_about_security_changes(tmp_path: Path) -> None:
    command = deploy_command(npx="npx", out_dir=tmp_path, stack_name="Dockline", approve=False, profile=None)
    assert command[command.index("--require-approval") + 1] == "broadening"
    assert "--profile" not in command
    assert command[command.index("--outputs-file") + 1] == str(tmp_path / "outputs.json")


def test_errors_belong_to_the_dockline_family() -> None:
    assert issubclass(DeployError, DocklineError)
    assert issubclass(SynthError, DocklineError)
