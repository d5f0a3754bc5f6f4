"""synth and deploy: the AWS stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dockline.cli.app import (
    app,
    console,
    context_of,
    err,
    print_json,
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


@app.command()
def backfill(
    ctx: typer.Context,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="Only keys under this prefix (inside a route's prefix).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="DATE", help="Only objects last modified at or after DATE (ISO 8601; UTC)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Name what would be sent; send nothing.")] = False,
    rate: Annotated[
        float | None,
        typer.Option("--rate", min=0.001, metavar="N", help="At most N messages (or invocations) per second."),
    ] = None,
    latest_only: Annotated[
        bool, typer.Option("--latest-only", help="In a versioned bucket, only each key's current version.")
    ] = False,
    mode: Annotated[
        str | None, typer.Option("--mode", help="queue or direct (default: what the stack deploys).")
    ] = None,
    bucket: Annotated[str | None, typer.Option("--bucket", help="The bucket (default: the stack's).")] = None,
    table: Annotated[str | None, typer.Option("--table", help="The ledger table (default: the stack's).")] = None,
    queue_url: Annotated[
        str | None, typer.Option("--queue-url", help="The input queue, queue mode (default: the stack's).")
    ] = None,
    function: Annotated[
        str | None, typer.Option("--function", help="The function, direct mode (default: the stack's).")
    ] = None,
    stack: Annotated[str | None, typer.Option("--stack", help="Stack name (default: [aws] stack_name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as one JSON object.")] = False,
) -> None:
    """Hand objects S3 never announced (there before the stack, or lost to a broken function) to the
    pipeline on AWS: every matching object version without a settled marker in the table. Safe to rerun."""
    from dockline.aws.backfill_run import resolve_targets, run_backfill
    from dockline.cli.aws_common import aws_clients, backfill_progress, parse_since

    settings = context_of(ctx).settings()
    clients = aws_clients()
    targets = resolve_targets(
        settings,
        clients,
        bucket=bucket,
        table=table,
        queue_url=queue_url,
        function_name=function,
        mode=mode,
        stack_name=stack,
    )
    with backfill_progress(console, enabled=console.is_terminal and not as_json) as on_progress:
        tally = run_backfill(
            targets,
            settings,
            clients,
            prefix=prefix,
            since=parse_since(since),
            latest_only=latest_only,
            dry_run=dry_run,
            rate=rate,
            on_progress=on_progress,
            on_would_send=None if as_json else lambda entry: say(console, f"would send {entry.ref.identity}"),
        )
    if as_json:
        print_json(tally.to_json())
    else:
        say(console, tally.line())
    for error in tally.errors:
        say(err, f"dockline: error: {error} (run it again to resume)")
    if tally.errors:
        raise typer.Exit(1)
