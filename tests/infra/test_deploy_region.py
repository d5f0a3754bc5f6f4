"""Issue 10, item 8: ``dockline deploy`` honours AWS_REGION, as the README says."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockline.config import AwsSettings, Settings
from dockline.errors import ConfigError
from dockline.infra import DeployError, deploy

from .test_commands import fake_npx, no_aws  # noqa: F401 - fixtures


@pytest.mark.usefixtures("no_aws", "fake_npx")
def test_item8_deploy_honours_aws_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN credentials and only AWS_REGION (no AWS_DEFAULT_REGION, no profile region)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    # and settings that synth refuses before it starts Node (so no CDK and no network run)
    settings = Settings(aws=AwsSettings(stack_name="bad_name"))
    # WHEN deploying / THEN the region check passes and the next step (synth) is reached
    with pytest.raises(ConfigError, match="stack_name"):
        deploy(settings, out_dir=tmp_path / "out", approve=True, profile=None, vendor_wheels=False)


@pytest.mark.usefixtures("no_aws", "fake_npx")
def test_item8_deploy_without_any_region_still_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN credentials and neither AWS_REGION nor AWS_DEFAULT_REGION
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # THEN deploy stops at the region, naming AWS_REGION
    with pytest.raises(DeployError, match="no AWS region set; set AWS_REGION"):
        deploy(Settings(), out_dir=tmp_path / "out", approve=True, profile=None, vendor_wheels=False)
