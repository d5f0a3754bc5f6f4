"""``synth`` and ``deploy``: what ``dockline synth`` and ``dockline deploy`` call (``dockline.infra.commands``).

aws_cdk is imported inside the functions: ``dockline.infra`` stays importable (and the CLI
can print a clear message) when the optional ``cdk`` extra is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from dockline.aws.runtime import NO_REGION
from dockline.config import Settings
from dockline.errors import DocklineError
from dockline.infra.asset import stage_function_code
from dockline.infra.wiring import validate_for_aws
from dockline.packaging import check_packaged, plan_config, write_config

CDK_CLI = "aws-cdk@2"
_NODE_BANNER_VAR = "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"
# CDK feature flags a new `cdk init` project sets and this app relies on (there is no cdk.json:
# the app is built here, not by the CDK CLI). Server access logs are granted by bucket policy,
# which works with ObjectOwnership=BucketOwnerEnforced (ACLs off).
CDK_CONTEXT: dict[str, object] = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


class SynthError(DocklineError):
    """The stack could not be synthesized (missing Node.js or aws-cdk-lib, or CDK rejected a value)."""


class DeployError(DocklineError):
    """The stack could not be deployed (no npx, no credentials, no region)."""


def _node_major() -> str:
    node = shutil.which("node")
    if node is None:
        raise SynthError("Node.js is not installed; the CDK needs it (install Node.js 20 or newer)")
    result = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return result.stdout.strip().lstrip("v").split(".")[0]


def synth(settings: Settings, out_dir: Path, *, vendor_wheels: bool = False) -> list[Path]:
    """Write the CloudFormation template(s) and assets to ``out_dir``; return the template paths.

    The function's code carries the configuration the settings came from (its ``[pipeline]``,
    ``[[routes]]``, schema files and transform modules: ``dockline.packaging``). With
    ``vendor_wheels`` (``deploy``) it also carries the arm64 wheels of orjson and, when a route
    has a schema, jsonschema: without them (``synth``, offline) the function falls back to
    ``json`` but cannot check schemas, and says so in one line when it starts.
    Needs Node.js and aws-cdk-lib, no AWS credentials and no network (unless ``vendor_wheels``).
    Raises ConfigError for bad settings, SynthError or AssetError otherwise.
    """
    validate_for_aws(settings)
    package = plan_config(settings)  # before Node starts: a missing schema or module fails fast
    # jsii prints a banner on every start under an end-of-life Node; the value names the major version.
    os.environ.setdefault(_NODE_BANNER_VAR, _node_major())
    try:
        import aws_cdk as cdk
        from jsii.errors import JSIIError

        from dockline.infra.stack import DocklineStack
    except ImportError as exc:
        raise SynthError(f"{exc.name} is not installed; install dockline with the cdk extra: dockline[cdk]") from exc

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dockline-code-") as tmp:
        wheels = package.wheels if package is not None else ()
        code_dir = stage_function_code(Path(tmp) / "code", vendor_wheels=vendor_wheels, extra_wheels=wheels)
        if package is not None:
            write_config(package, code_dir)
            check_packaged(code_dir)
        try:
            app = cdk.App(outdir=str(out_dir), context=CDK_CONTEXT)
            DocklineStack(app, settings=settings, code_dir=code_dir)
            assembly = app.synth()
        except (JSIIError, RuntimeError) as exc:  # jsii reports CDK validation errors as RuntimeError
            raise SynthError(f"CDK rejected the stack: {exc}") from exc
    return [out_dir / stack.template_file for stack in assembly.stacks]


def deploy_command(*, npx: str, out_dir: Path, stack_name: str, approve: bool, profile: str | None) -> list[str]:
    """The CDK CLI call that deploys the already-synthesized assembly in ``out_dir``."""
    command = [
        npx,
        "--yes",
        CDK_CLI,
        "deploy",
        stack_name,
        "--app",
        str(out_dir),
        "--outputs-file",
        str(out_dir / "outputs.json"),
        # Without approval the CDK asks before widening IAM or security groups (needs a terminal).
        "--require-approval",
        "never" if approve else "broadening",
    ]
    if profile:
        command += ["--profile", profile]
    return command


def _check_credentials(profile: str | None) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.Session(profile_name=profile)
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise DeployError(f"cannot load AWS credentials: {exc}") from exc
    if credentials is None:
        where = f"profile {profile!r}" if profile else "the environment or the default profile"
        raise DeployError(f"no AWS credentials in {where}; run `aws configure` or `aws sso login` first")
    # botocore reads only AWS_DEFAULT_REGION and the profile; the CDK CLI and the AWS CLI also
    # read AWS_REGION, which the README names: accept either.
    if not (session.region_name or os.environ.get("AWS_REGION")):
        raise DeployError(NO_REGION)


def deploy(settings: Settings, *, out_dir: Path, approve: bool, profile: str | None, vendor_wheels: bool = True) -> int:
    """Synthesize into ``out_dir`` and run ``cdk deploy`` on it; return the CDK CLI's exit code.

    Raises ConfigError, DeployError (no npx, credentials or region), SynthError or AssetError.
    """
    npx = shutil.which("npx")
    if npx is None:
        raise DeployError("npx is not installed; install Node.js 20 or newer (it brings npm and npx)")
    _check_credentials(profile)
    synth(settings, out_dir, vendor_wheels=vendor_wheels)
    command = deploy_command(
        npx=npx, out_dir=out_dir, stack_name=settings.aws.stack_name, approve=approve, profile=profile
    )
    return subprocess.run(command, check=False).returncode  # noqa: S603
