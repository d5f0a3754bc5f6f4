"""LocalTopic: the notifier port on one machine.

Every message is recorded in SQLite (``dockline notifications list``), echoed as a
line, and delivered to the webhook and email subscriptions from ``dockline.toml``.
As with SNS, publishing succeeds once the topic has the message: each delivery is
recorded as pending in the same transaction (an outbox), and the delivery worker
(``local/deliveries.py``) sends it after the commit, in its own threads, retrying on
a persisted schedule. Publishing never waits on a receiver, and a failed delivery
never fails the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from dockline.local.db import Database
from dockline.local.subscriptions import Subscription
from dockline.models import DeadLetter, Notification, ObjectRef
from dockline.pipeline import iso
from dockline.ports import DeadLetters, Notifier

_DELIVERY = (
    "INSERT OR IGNORE INTO deliveries (notification_id, subscription, status, attempts, updated_at,"
    " next_attempt_at, scheduled_from) VALUES (?, ?, 'pending', 0, ?, ?, ?)"
)


class LocalTopic(Notifier):
    def __init__(
        self,
        db: Database,
        *,
        subscriptions: Sequence[Subscription] = (),
        echo: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_publish: Callable[[], object] | None = None,
    ) -> None:
        """``on_publish`` runs after the commit of a message that has deliveries (the
        delivery worker's wake-up)."""
        self.db = db
        self.subscriptions = list(subscriptions)
        self.echo = echo
        self._clock = clock
        self._on_publish = on_publish

    def publish(self, notification: Notification) -> None:
        published_at = iso(self._clock())
        wanted = [sub.name for sub in self.subscriptions if sub.wants(notification)]
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
            # Deliveries are an outbox too: recorded with the message, sent after the commit
            # by the delivery worker, so a crash never loses one (at least once).
            conn.executemany(
                _DELIVERY, [(notification_id, name, published_at, published_at, published_at) for name in wanted]
            )
            if wanted and self._on_publish is not None:
                self.db.on_commit(self._on_publish)
        if self.echo is not None:
            status = notification.attributes.get("status", "?")
            self.echo(f"[{status}] {notification.subject}: {notification.message}")

    def publish_batch(self, notifications: Sequence[Notification]) -> None:
        """``publish`` for many messages in one transaction: one statement for the messages,
        one for their deliveries. The ids are given here (the table's AUTOINCREMENT would
        give the same), so each delivery names its message without a query per message."""
        published_at = iso(self._clock())
        messages = []
        deliveries = []
        with self.db.transaction() as conn:
            (last,) = conn.execute(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'notifications'), 0),"
                " COALESCE((SELECT MAX(id) FROM notifications), 0))"
            ).fetchone()
            for number, notification in enumerate(notifications, start=int(last) + 1):
                attributes = orjson.dumps(dict(notification.attributes)).decode()
                messages.append((number, notification.subject, notification.message, attributes, published_at))
                for sub in self.subscriptions:
                    if sub.wants(notification):
                        deliveries.append((number, sub.name, published_at, published_at, published_at))
            conn.executemany(
                "INSERT INTO notifications (id, subject, message, attributes, published_at) VALUES (?, ?, ?, ?, ?)",
                messages,
            )
            conn.executemany(_DELIVERY, deliveries)
            if deliveries and self._on_publish is not None:
                self.db.on_commit(self._on_publish)
        if self.echo is not None:
            for notification in notifications:
                status = notification.attributes.get("status", "?")
                self.echo(f"[{status}] {notification.subject}: {notification.message}")

    def messages(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, subject, message, attributes, published_at FROM notifications ORDER BY id"
        rows = self.db.query(sql + (f" LIMIT {int(limit)}" if limit else ""))
        deliveries: dict[int, list[dict[str, Any]]] = {}
        # SELECT *: a data dir not yet opened for writing may lack the schedule's columns.
        for d in self.db.query("SELECT * FROM deliveries ORDER BY notification_id, subscription"):
            columns = d.keys()
            deliveries.setdefault(int(d["notification_id"]), []).append(
                {
                    "subscription": d["subscription"],
                    "status": d["status"],
                    "error": d["error"],
                    "attempts": d["attempts"],
                    "next_attempt_at": d["next_attempt_at"] if "next_attempt_at" in columns else None,
                    "updated_at": d["updated_at"],
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

    def resolve(self, ref: ObjectRef) -> int:
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM dead_letters WHERE bucket = ? AND key = ? AND version <> ?",
                (ref.bucket, ref.key, ref.version),
            )
            return cursor.rowcount

    def resolve_batch(self, refs: Sequence[ObjectRef]) -> int:
        """``resolve`` for many versions: nothing but one query while there are no letters."""
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM dead_letters LIMIT 1").fetchone() is None:
                return 0
            before = conn.total_changes
            conn.executemany(
                "DELETE FROM dead_letters WHERE bucket = ? AND key = ? AND version <> ?",
                [(ref.bucket, ref.key, ref.version) for ref in refs],
            )
            return conn.total_changes - before
