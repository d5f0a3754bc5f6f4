"""dlq list / show / redrive, locally or on an AWS queue."""

from typing import Annotated, Any

import typer

from dockline.cli.app import (
    Context,
    console,
    context_of,
    dlq_app,
    new_table,
    print_json,
)
from dockline.errors import UsageError
from dockline.render import say

# -- dead letters ----------------------------------------------------------------------
QueueUrl = Annotated[
    str | None,
    typer.Option("--queue-url", help="Work on this AWS SQS dead-letter queue instead of the local one."),
]
StackOption = Annotated[
    bool,
    typer.Option("--aws", help="Use the deployed stack's DLQ (DeadLetterQueueUrl output) instead of the local one."),
]


def _aws_queue(c: Context, queue_url: str | None, use_stack: bool) -> str | None:
    if queue_url:
        return queue_url
    if use_stack:
        from dockline.aws.deadletters import queue_url_from_stack

        return str(queue_url_from_stack(c.settings().aws.stack_name))
    return None


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    queue_url: QueueUrl = None,
    aws: StackOption = False,
) -> None:
    """List dead letters: files that failed for good or ran out of retries."""
    from dockline.redrive import short_id

    letters = _dead_letters(context_of(ctx), queue_url, aws)
    if as_json:
        print_json([_letter_json(letter) for letter in letters])
        return
    # The table shows a short id (key@<12 hex>) that `dlq show` and `dlq redrive` accept;
    # --json has the full ids.
    table = new_table(
        f"{len(letters)} dead letters", ("id", 16), ("key", 16), ("attempts", 0), ("failed_at", 0), ("reason", -1)
    )
    for letter in letters:
        table.add_row(short_id(letter), letter.ref.key, str(letter.attempts), letter.failed_at, letter.reason)
    console.print(table)


def _dead_letters(c: Context, queue_url: str | None, use_stack: bool) -> list[Any]:
    """The local dead letters, or the AWS queue's with --queue-url / --aws."""
    url = _aws_queue(c, queue_url, use_stack)
    if url:
        from dockline.aws.deadletters import list_dead_letters

        return list_dead_letters(url, settings=c.settings())
    return list(c.engine(read_only=True).dead_letters.list())


def _letter_json(letter: Any) -> dict[str, Any]:
    return {
        "id": letter.id,
        "bucket": letter.ref.bucket,
        "key": letter.ref.key,
        "version": letter.ref.version,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "failed_at": letter.failed_at,
    }


@dlq_app.command("show")
def dlq_show(
    ctx: typer.Context,
    letter_id: Annotated[
        str,
        typer.Argument(metavar="ID", help="The dead letter's id, a unique prefix of it, or its key (see `dlq list`)."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    queue_url: QueueUrl = None,
    aws: StackOption = False,
) -> None:
    """Show one dead letter."""
    from dockline.redrive import resolve

    row = _letter_json(resolve(_dead_letters(context_of(ctx), queue_url, aws), letter_id))
    if as_json:
        print_json(row)
        return
    for name, value in row.items():
        say(console, f"{name}: {value}")


@dlq_app.command("redrive")
def dlq_redrive(
    ctx: typer.Context,
    letter_id: Annotated[
        str | None,
        typer.Argument(metavar="[ID]", help="The dead letter to redrive: its id, a unique prefix, or its key."),
    ] = None,
    all_letters: Annotated[bool, typer.Option("--all", help="Redrive every dead letter.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be done.")] = False,
    queue_url: QueueUrl = None,
    aws: StackOption = False,
) -> None:
    """Process dead-lettered files again (after fixing them); settled letters are removed."""
    if (letter_id is None) == (not all_letters):
        raise UsageError("name one dead letter ID, or pass --all")
    c = context_of(ctx)
    url = _aws_queue(c, queue_url, aws)
    ids = None if all_letters else [letter_id or ""]
    if url:
        from dockline.aws.deadletters import redrive_aws

        for line in redrive_aws(url, ids=ids, dry_run=dry_run, settings=c.settings()):
            say(console, line)
        return
    engine = c.engine(create=False)
    steps = engine.plan_redrive(ids)
    if not steps:
        console.print("no dead letters")
        return
    if dry_run:
        for step in steps:
            say(console, f"would {step.action}: {step.letter.ref.key} ({step.letter.id})")
        return
    for step, outcome in engine.redrive(steps):
        state = "left in the DLQ" if outcome is None else str(outcome.status)
        reason = f": {outcome.error}" if outcome is not None and outcome.error else ""
        say(console, f"{step.letter.ref.key}: {step.action} -> {state}{reason}")
