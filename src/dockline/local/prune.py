"""``dockline prune``: keep the SQLite file from growing without end.

Only the local topic's history goes: notifications older than a cutoff whose every
delivery has settled (delivered or failed), with those deliveries. A notification with a
delivery still pending, sending or retrying is kept whatever its age, and nothing else is
ever touched: not items, not files rows (settled or not), not dead letters. Deletion runs
one transaction per chunk, so a long prune never holds the write lock for long and a
crash loses at most one chunk's progress (never half a chunk).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from dockline.errors import UsageError
from dockline.local.db import Database

CHUNK = 1_000
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_AGE = re.compile(r"(\d+)([smhdw])")

# Old notifications none of whose deliveries is still to be sent (none at all counts too).
_SETTLED_OLD = (
    "FROM notifications n WHERE n.published_at < ? AND NOT EXISTS ("
    "SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.status NOT IN ('delivered', 'failed'))"
)


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` as a timedelta. Raises UsageError."""
    match = _AGE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise UsageError(f"--notifications-older-than {text!r}: give a positive age such as 30d, 12h, 90m or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True, slots=True)
class Pruned:
    notifications: int  # deleted (or, in a dry run, that would be)
    deliveries: int
    kept_unsettled: int  # old notifications kept because a delivery is still to be sent


def prune_notifications(db: Database, *, before: str, dry_run: bool = False, chunk: int = CHUNK) -> Pruned:
    """Delete notifications published before ``before`` (an ISO timestamp, as stored) whose
    deliveries all settled, and those deliveries, ``chunk`` notifications per transaction.
    With ``dry_run`` only count them. Raises DocklineError (StorageError, a lock wait)."""
    kept = _count(db, "SELECT COUNT(*) FROM notifications WHERE published_at < ?", before) - _count(
        db, f"SELECT COUNT(*) {_SETTLED_OLD}", before
    )
    if dry_run:
        return Pruned(
            _count(db, f"SELECT COUNT(*) {_SETTLED_OLD}", before),
            _count(
                db,
                f"SELECT COUNT(*) FROM deliveries WHERE notification_id IN (SELECT n.id {_SETTLED_OLD})",  # noqa: S608 - constants only
                before,
            ),
            kept,
        )
    notifications = deliveries = 0
    after = 0  # ids only grow (AUTOINCREMENT): each chunk starts after the last one seen
    while True:
        with db.transaction() as conn:
            # Chosen inside the transaction: a delivery made due meanwhile (redeliver) keeps its notification.
            ids = [
                row[0]
                for row in conn.execute(
                    f"SELECT n.id {_SETTLED_OLD} AND n.id > ? ORDER BY n.id LIMIT ?", (before, after, chunk)
                )
            ]
            if not ids:
                break
            marks = ",".join("?" * len(ids))
            deliveries += conn.execute(f"DELETE FROM deliveries WHERE notification_id IN ({marks})", ids).rowcount  # noqa: S608 - only "?" marks
            notifications += conn.execute(f"DELETE FROM notifications WHERE id IN ({marks})", ids).rowcount  # noqa: S608
        after = ids[-1]
    return Pruned(notifications, deliveries, kept)


def _count(db: Database, sql: str, before: str) -> int:
    return int(db.query(sql, (before,))[0][0])
