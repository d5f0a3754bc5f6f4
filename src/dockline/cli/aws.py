"""synth and deploy: the AWS stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dockline.cli.app import (
    app,
    console,
    context_of,
)
from dockline.errors import UsageError
from dockline.render import say


# -- AWS -------------------------------------------------------------------------------
@app.command()
def synth(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder for the CloudFormation templates.")] = Path("cdk.out"),
    mode: Annotated[str | None, typer.Option("--mode", help="Override [aws] trigger: queue or direct.")] = None,
) -> None:
    """Write the AWS stack's CloudFormation template(s); needs no AWS credentials."""
    from dataclasses import replace

    from dockline.infra import commands

    settings = context_of(ctx).settings()
    if mode is not None:
        if mode not in ("queue", "direct"):
            raise UsageError("--mode must be 'queue' or 'direct'")
        settings = replace(settings, aws=replace(settings.aws, trigger=mode))
    for path in commands.synth(settings, out):
        say(console, f"wrote {path}")


@app.command()
def deploy(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder for the synthesized assembly.")] = Path("cdk.out"),
    approve: Annotated[bool, typer.Option("--approve", help="Do not ask before IAM/security changes.")] = False,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile to deploy with.")] = None,
) -> None:
    """Deploy the stack with the AWS CDK CLI (needs AWS credentials and npx)."""
    from dockline.infra import commands

    code = commands.deploy(context_of(ctx).settings(), out_dir=out, approve=approve, profile=profile)
    raise typer.Exit(code)
