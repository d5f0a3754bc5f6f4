"""LocalTopic: the notifier port on one machine.

Every message is recorded in SQLite (``dockline notifications list``), echoed as a
line, and delivered to the webhook and email subscriptions from ``dockline.toml``.
As with SNS, publishing succeeds once the topic has the message; a subscription
that fails after its retries is recorded as a failed delivery, it does not fail the
file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from dockline.local.db import Database
from dockline.local.subscriptions import Subscription, deliver_with_retry
from dockline.models import DeadLetter, Notification, ObjectRef
from dockline.pipeline import iso
from dockline.ports import DeadLetters, Notifier


class LocalTopic(Notifier):
    def __init__(
        self,
        db: Database,
        *,
        subscriptions: Sequence[Subscription] = (),
        echo: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.subscriptions = list(subscriptions)
        self.echo = echo
        self._clock = clock

    def publish(self, notification: Notification) -> None:
        published_at = iso(self._clock())
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO notifications (subject, message, attributes, published_at) VALUES (?, ?, ?, ?)",
                (
                    notification.subject,
                    notification.message,
                    orjson.dumps(dict(notification.attributes)).decode(),
                    published_at,
                ),
            )
            notification_id = int(cursor.lastrowid or 0)
        if self.echo is not None:
            status = notification.attributes.get("status", "?")
            self.echo(f"[{status}] {notification.subject}: {notification.message}")
        for sub in self.subscriptions:
            if not sub.wants(notification):
                continue
            delivered, error, attempts = deliver_with_retry(
                sub, notification, published_at=published_at, notification_id=notification_id
            )
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO deliveries (notification_id, subscription, status, error, attempts,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        notification_id,
                        sub.name,
                        "delivered" if delivered else "failed",
                        error,
                        attempts,
                        iso(self._clock()),
                    ),
                )

    def messages(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, subject, message, attributes, published_at FROM notifications ORDER BY id"
        rows = self.db.query(sql + (f" LIMIT {int(limit)}" if limit else ""))
        deliveries: dict[int, list[dict[str, Any]]] = {}
        for d in self.db.query("SELECT notification_id, subscription, status, error, attempts FROM deliveries"):
            deliveries.setdefault(int(d["notification_id"]), []).append(
                {
                    "subscription": d["subscription"],
                    "status": d["status"],
                    "error": d["error"],
                    "attempts": d["attempts"],
                }
            )
        return [
            {
                "id": row["id"],
                "subject": row["subject"],
                "message": row["message"],
                "attributes": orjson.loads(row["attributes"]),
                "published_at": row["published_at"],
                "deliveries": deliveries.get(int(row["id"]), []),
            }
            for row in rows
        ]


class SQLiteDeadLetters(DeadLetters):
    """Dead letters of the local engine, in the same SQLite file."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, letter: DeadLetter) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO dead_letters (id, bucket, key, version, reason, attempts, failed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    letter.id,
                    letter.ref.bucket,
                    letter.ref.key,
                    letter.ref.version,
                    letter.reason,
                    letter.attempts,
                    letter.failed_at,
                ),
            )

    def list(self) -> Iterator[DeadLetter]:
        rows = self.db.query(
            "SELECT id, bucket, key, version, reason, attempts, failed_at FROM dead_letters ORDER BY failed_at, id"
        )
        for row in rows:
            yield DeadLetter(
                id=row["id"],
                ref=ObjectRef(bucket=row["bucket"], key=row["key"], version=row["version"]),
                reason=row["reason"],
                attempts=row["attempts"],
                failed_at=row["failed_at"],
            )

    def get(self, letter_id: str) -> DeadLetter | None:
        return next((letter for letter in self.list() if letter.id == letter_id), None)

    def remove(self, letter_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM dead_letters WHERE id = ?", (letter_id,))
