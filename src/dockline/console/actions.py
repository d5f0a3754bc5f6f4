"""The console's two buttons, done the way the CLI does them.

- redrive: ``engine.plan_redrive`` then ``engine.redrive``, as ``dockline dlq redrive ID``;
- redeliver: ``DeliveryWorker.redeliver`` then ``deliver_due``, as ``dockline
  notifications redeliver ID`` / ``--failed``.

Each opens a writing engine for the action only (``DataSource.writing``), so the console
takes the write lock just while it acts, in turn with a running ``dockline run``.
"""

from __future__ import annotations

from typing import Any

from dockline.console.source import DataSource


def redrive(source: DataSource, letter: str) -> dict[str, Any]:
    """Redrive one dead letter (its id, a unique prefix, or its key). Returns what became
    of it, one line per letter as ``dlq redrive`` prints. Raises UsageError (unknown or
    ambiguous name), DocklineError."""
    with source.writing() as engine:
        steps = engine.plan_redrive([letter])
        done = []
        for step, outcome in engine.redrive(steps):
            state = "left in the DLQ" if outcome is None else str(outcome.status)
            reason = f": {outcome.error}" if outcome is not None and outcome.error else ""
            done.append(
                {
                    "key": step.letter.ref.key,
                    "action": step.action,
                    "status": None if outcome is None else str(outcome.status),
                    "line": f"{step.letter.ref.key}: {step.action} -> {state}{reason}",
                }
            )
    return {"redriven": done}


def redeliver(source: DataSource, notification_id: int | None, *, failed: bool = False) -> dict[str, Any]:
    """Make the deliveries of ``notification_id`` (or, with ``failed``, every one not
    delivered) due now and send them. Raises UsageError (unknown id, no subscription)."""
    with source.writing() as engine:
        worker = engine.deliveries
        due = worker.redeliver(notification_id, failed=failed)
        sent = worker.deliver_due(notification_id=notification_id) if due else []
    counts = {state: sum(1 for s in sent if s.status == state) for state in ("delivered", "retrying", "failed")}
    line = f"{due} made due, {len(sent)} sent: " + ", ".join(f"{n} {state}" for state, n in counts.items())
    return {"due": due, "sent": len(sent), **counts, "line": line}
