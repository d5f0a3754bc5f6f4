"""LocalTopic: the notifier port on one machine.

Every message is recorded in SQLite (``dockline notifications list``), echoed as a
line, and delivered to the webhook and email subscriptions from ``dockline.toml``.
As with SNS, publishing succeeds once the topic has the message; each delivery is
recorded as pending with it and sent after the commit (at least once, even across a
crash). A subscription that fails after its retries is recorded as a failed
delivery; it does not fail the file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
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
        self._flush_lock = threading.Lock()
        self._dirty = False

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
            # Deliveries are an outbox too: recorded with the message, sent after the commit,
            # so a crash never loses one (it is sent on the next start: at least once).
            conn.executemany(
                "INSERT OR IGNORE INTO deliveries (notification_id, subscription, status, attempts, updated_at)"
                " VALUES (?, ?, 'pending', 0, ?)",
                [(notification_id, name, published_at) for name in wanted],
            )
            if wanted:
                self.db.on_commit(self.flush)
        if self.echo is not None:
            status = notification.attributes.get("status", "?")
            self.echo(f"[{status}] {notification.subject}: {notification.message}")

    def flush(self) -> int:
        """Deliver every pending delivery; returns how many were attempted. Never raises
        for a subscription's failure: that is recorded on the delivery."""
        if not self.subscriptions:
            return 0
        # Called after every commit, from any thread, and even from inside a flush (its own
        # commits run the callbacks): whoever finds a flush running leaves a mark, and the
        # running one goes round again. Never blocks, never loses a wake-up.
        self._dirty = True
        attempted = 0
        while self._dirty:
            if not self._flush_lock.acquire(blocking=False):
                return attempted
            try:
                self._dirty = False
                attempted += self._deliver_pending()
            finally:
                self._flush_lock.release()
        return attempted

    def _deliver_pending(self) -> int:
        by_name = {sub.name: sub for sub in self.subscriptions}
        attempted = 0
        stale = iso(self._clock() - timedelta(minutes=10))
        with self.db.transaction() as conn:  # a sender that died mid-delivery
            conn.execute(
                "UPDATE deliveries SET status = 'pending' WHERE status = 'sending' AND updated_at < ?", (stale,)
            )
        pending = self.db.query(
            "SELECT d.notification_id, d.subscription, n.subject, n.message, n.attributes, n.published_at"
            " FROM deliveries d JOIN notifications n ON n.id = d.notification_id"
            " WHERE d.status = 'pending' ORDER BY d.notification_id"
        )
        for row in pending:
            sub = by_name.get(row["subscription"])
            if not self._claim(row["notification_id"], row["subscription"]):
                continue  # another process took it
            attempted += 1
            if sub is None:
                self._record(row["notification_id"], row["subscription"], False, "subscription no longer configured", 0)
                continue
            notification = Notification(row["subject"], row["message"], orjson.loads(row["attributes"]))
            delivered, error, attempts = deliver_with_retry(
                sub, notification, published_at=row["published_at"], notification_id=row["notification_id"]
            )
            self._record(row["notification_id"], sub.name, delivered, error, attempts)
        return attempted

    def _claim(self, notification_id: int, name: str) -> bool:
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET status = 'sending', updated_at = ?"
                " WHERE notification_id = ? AND subscription = ? AND status = 'pending'",
                (iso(self._clock()), notification_id, name),
            )
            return cursor.rowcount == 1

    def _record(self, notification_id: int, name: str, delivered: bool, error: str | None, attempts: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, error = ?, attempts = ?, updated_at = ?"
                " WHERE notification_id = ? AND subscription = ?",
                ("delivered" if delivered else "failed", error, attempts, iso(self._clock()), notification_id, name),
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

    def resolve(self, ref: ObjectRef) -> int:
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM dead_letters WHERE bucket = ? AND key = ? AND version <> ?",
                (ref.bucket, ref.key, ref.version),
            )
            return cursor.rowcount
