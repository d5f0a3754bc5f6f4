"""notifications list / redeliver, and prune of old notifications."""

from typing import Annotated, Any

import typer

from dockline.cli.app import (
    app,
    console,
    context_of,
    new_table,
    notifications_app,
    print_json,
)
from dockline.errors import UsageError
from dockline.render import say, visible


@notifications_app.command("list")
def notifications_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many messages.")] = None,
) -> None:
    """List the local topic's messages and the state of each webhook/email delivery."""

    engine = context_of(ctx).engine(read_only=True)
    messages = engine.topic.messages(limit=limit)
    if as_json:
        print_json(messages)
        return
    table = new_table(
        f"{len(messages)} notifications",
        ("id", 0),
        ("published_at", 0),
        ("subject", 10),
        ("message", -1),
        ("status", 0),
        ("deliveries", 24),
    )
    from rich.text import Text  # rich: only when a table is printed

    for m in messages:
        # One line per delivery; each line's own text (a receiver's answer) shown literally.
        deliveries = Text("\n".join(visible(_delivery_state(d)) for d in m["deliveries"]))
        table.add_row(
            str(m["id"]),
            m["published_at"],
            m["subject"],
            m["message"],
            str(m["attributes"].get("status", "")),
            deliveries,
        )
    console.print(table)


def _delivery_state(delivery: dict[str, Any]) -> str:
    """``webhook:https://h/p: retrying at T (2 attempts): reason`` - one line per delivery."""
    status = delivery["status"]
    if status == "retrying" and delivery.get("next_attempt_at"):
        status = f"retrying at {delivery['next_attempt_at']}"
    attempts = delivery["attempts"]
    name = delivery["subscription"]
    line = f"{name}: {status} ({attempts} attempt{'' if attempts == 1 else 's'})"
    error = delivery["error"]
    if error and delivery["status"] != "delivered":
        line += ": " + error.removeprefix(f"{name}: ")  # reasons start with the name: say it once
    return line


@notifications_app.command("redeliver")
def notifications_redeliver(
    ctx: typer.Context,
    notification_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", help="The notification whose deliveries to send again.")
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Every delivery not delivered yet (failed or retrying).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Make deliveries due now with a fresh retry horizon, and send them."""
    if (notification_id is None) == (not failed):
        raise UsageError("name one notification ID, or pass --failed")
    engine = context_of(ctx).engine(create=False)
    worker = engine.deliveries
    made_due = worker.redeliver(notification_id, failed=failed)
    sent = worker.deliver_due(notification_id=notification_id) if made_due else []
    counts = {state: sum(1 for s in sent if s.status == state) for state in ("delivered", "retrying", "failed")}
    if as_json:
        print_json({"due": made_due, "sent": len(sent), **counts, "deliveries": [_sent_json(s) for s in sent]})
        return
    line = f"{made_due} made due, {len(sent)} sent: " + ", ".join(f"{n} {state}" for state, n in counts.items())
    retrying = [s.next_attempt_at for s in sent if s.next_attempt_at]
    if retrying:
        line += f" (next try at {min(retrying)})"
    say(console, line)


def _sent_json(sent: Any) -> dict[str, Any]:
    return {
        "notification_id": sent.notification_id,
        "subscription": sent.subscription,
        "status": sent.status,
        "attempts": sent.attempts,
        "error": sent.error,
        "next_attempt_at": sent.next_attempt_at,
    }


@app.command()
def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--notifications-older-than",
            help="Delete notifications older than this (30d, 12h, 90m, 2w) whose deliveries all settled.",
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be deleted.")] = False,
) -> None:
    """Delete old notifications and their settled deliveries; never items, files or dead letters."""
    from datetime import UTC, datetime

    from dockline.local.prune import parse_age, prune_notifications
    from dockline.pipeline import iso

    age = parse_age(older_than)
    before = iso(datetime.now(UTC) - age)
    engine = context_of(ctx).engine(read_only=dry_run, create=False)
    done = prune_notifications(engine.db, before=before, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    line = f"{verb} {done.notifications} notifications and {done.deliveries} deliveries published before {before}"
    if done.kept_unsettled:
        line += f"; kept {done.kept_unsettled} older ones with deliveries still to send"
    say(console, line)
