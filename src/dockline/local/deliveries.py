"""The delivery worker: sends the local topic's webhook and email deliveries, off the
processing path, on a schedule kept in SQLite.

The topic records each delivery as ``pending`` in the same transaction as its message
(the outbox). This worker, in its own threads with its own connection, claims due
deliveries one at a time and sends them; a processing thread never waits on a receiver.

- A delivered one is ``delivered``. A refusal for good (HTTP 4xx other than 408/429,
  SMTP 5xx, a bad setting) is ``failed`` at once, with the receiver's reason.
- A transient failure (timeout, connection error, HTTP 5xx/408/429, SMTP 4xx) is
  ``retrying`` with ``next_attempt_at``: exponential backoff with full jitter, never
  sooner than the receiver's ``Retry-After`` (bounded). The schedule is in the table, so
  it holds across runs and processes, until ``horizon_seconds`` after the delivery was
  first published (or redelivered); then it is ``failed`` with its last reason.
- Claiming is one write transaction, so two processes never send the same delivery.
  The claimant writes its owner (``host:pid:token``); a ``sending`` row whose owner
  process is gone (kill -9) is due again at once, not after a timeout.

Each subscription has its own thread: a hanging webhook delays neither processing nor
the mailbox. Sends are at least once; receivers drop duplicates by ``Idempotency-Key``
/ ``Message-ID``, which are stable per notification.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from dockline.errors import DocklineError, UsageError
from dockline.local.db import Database
from dockline.local.subscriptions import Attempt, Subscription, attempt
from dockline.models import Notification
from dockline.pipeline import iso

log = logging.getLogger("dockline.local.deliveries")

_HOST = socket.gethostname()
# A 'sending' row of another machine, or of a dockline too old to write an owner, is
# taken back only after this long: its process cannot be asked whether it is alive.
_FOREIGN_STALE = timedelta(minutes=10)
# Workers of this process, by owner token: a row owned by one of them is not orphaned.
_LIVE: weakref.WeakValueDictionary[str, DeliveryWorker] = weakref.WeakValueDictionary()

DUE_STATUSES = ("pending", "retrying")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter (as SNS's delivery policies, 10 s to 10 min).

    ``delay(n)`` after the n-th failure is uniform in [0, min(max, base * 2**(n-1))];
    a receiver's Retry-After raises it, up to ``max_retry_after_seconds``.
    """

    base_seconds: float = 10.0
    max_seconds: float = 600.0
    max_retry_after_seconds: float = 3600.0
    rand: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, failures: int, *, retry_after: float | None = None) -> float:
        jittered = self.rand() * min(self.max_seconds, self.base_seconds * 2.0 ** (max(failures, 1) - 1))
        if retry_after is None:
            return jittered
        return max(jittered, min(max(retry_after, 0.0), self.max_retry_after_seconds))


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from ``now``: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    from email.utils import parsedate_to_datetime  # rare; email costs start-up ~2 ms

    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


@dataclass(frozen=True, slots=True)
class Sent:
    """The result of one delivery attempt as recorded: its new status and when it is due again."""

    notification_id: int
    subscription: str
    status: str  # delivered | retrying | failed
    error: str | None
    attempts: int
    next_attempt_at: str | None


class DeliveryWorker:
    """Sends due deliveries of ``subscriptions`` from the SQLite file at ``db_path``.

    Synchronous use (tests, ``notifications redeliver``): :meth:`deliver_due`. Background
    use: :meth:`start`, :meth:`wake` after a commit, :meth:`stop` with a bounded grace.
    Nothing is opened until first used. ``clock`` stamps and schedules (tests move it);
    ``backoff`` draws the waits. An idle thread sleeps until its next due delivery, at most
    ``poll_seconds`` (other processes' deliveries are found by polling), or until woken.
    """

    def __init__(
        self,
        db_path: Path,
        subscriptions: Sequence[Subscription],
        *,
        horizon_seconds: float = 86_400.0,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_seconds: float = 30.0,
    ) -> None:
        self.db_path = db_path
        self.subscriptions = {sub.name: sub for sub in subscriptions}
        self.horizon = timedelta(seconds=horizon_seconds)
        self.backoff = backoff or Backoff()
        self.poll_seconds = poll_seconds
        self._clock = clock
        token = uuid.uuid4().hex[:8]
        self.owner = f"{_HOST}:{os.getpid()}:{token}"
        _LIVE[token] = self
        self._db: Database | None = None
        self._open_lock = threading.Lock()
        self._run: _Run | None = None

    # -- storage ------------------------------------------------------------------------
    @property
    def db(self) -> Database:
        """The worker's own Database (its own connections and write lock): its short
        transactions never join a processing group commit."""
        with self._open_lock:
            if self._db is None:
                self._db = Database(self.db_path)
            return self._db

    def close(self) -> None:
        with self._open_lock:
            if self._db is not None:
                self._db.close()

    # -- synchronous --------------------------------------------------------------------
    def deliver_due(self, *, subscription: str | None = None, notification_id: int | None = None) -> list[Sent]:
        """Send every delivery due now (of one subscription / notification if named), one
        at a time, until none is due. Returns what each attempt came to."""
        self.reclaim()
        results: list[Sent] = []
        names = [subscription] if subscription is not None else [*self.subscriptions, None]
        for name in names:
            while (sent := self.send_next(name, notification_id=notification_id)) is not None:
                results.append(sent)
        return results

    def redeliver(self, notification_id: int | None = None, *, failed: bool = False) -> int:
        """Make deliveries due now, with a fresh horizon: every delivery of
        ``notification_id`` that is not being sent, or with ``failed`` every one not
        delivered (failed and retrying). Returns how many. Raises UsageError for an
        unknown notification id, or when no subscription is configured (nothing could send them)."""
        if not self.subscriptions:
            raise UsageError("no [[local.subscriptions]] are configured here to send them (see --config)")
        now = iso(self._clock())
        with self.db.transaction() as conn:
            if notification_id is not None:
                if conn.execute("SELECT 1 FROM notifications WHERE id = ?", (notification_id,)).fetchone() is None:
                    raise UsageError(f"no notification with id {notification_id} (see `dockline notifications list`)")
                cursor = conn.execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, scheduled_from = ?, owner = NULL,"
                    " updated_at = ? WHERE notification_id = ? AND status != 'sending'",
                    (now, now, now, notification_id),
                )
            elif failed:
                cursor = conn.execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, scheduled_from = ?, owner = NULL,"
                    " updated_at = ? WHERE status IN ('failed', 'retrying')",
                    (now, now, now),
                )
            else:
                raise UsageError("name one notification ID, or pass --failed")
            return int(cursor.rowcount)

    def reclaim(self) -> int:
        """Deliveries left ``sending`` by a process that is gone become due now. Returns how many."""
        now = self._clock()
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT notification_id, subscription, owner, updated_at FROM deliveries WHERE status = 'sending'"
            ).fetchall()
            orphans = [(nid, name) for nid, name, owner, updated in rows if _orphaned(owner, updated, now)]
            conn.executemany(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, owner = NULL, updated_at = ?,"
                " error = 'interrupted while sending; sent again' WHERE notification_id = ? AND subscription = ?"
                " AND status = 'sending'",
                [(iso(now), iso(now), nid, name) for nid, name in orphans],
            )
        if orphans:
            log.info("%d deliveries interrupted by a stopped process are due again", len(orphans))
        return len(orphans)

    def send_next(self, subscription: str | None, *, notification_id: int | None = None) -> Sent | None:
        """Claim and send the next due delivery of ``subscription`` (None: of a subscription
        this worker does not know, which then fails). None when nothing is due."""
        claimed = self._claim(subscription, notification_id)
        if claimed is None:
            return None
        nid, name, attempts, scheduled_from, subject, message, attributes, published_at = claimed
        sub = self.subscriptions.get(name)
        if sub is None:
            result = Attempt(False, f"{name}: subscription no longer configured")
        else:
            notification = Notification(subject, message, orjson.loads(attributes))
            result = attempt(sub, notification, published_at=published_at, notification_id=nid)
        return self._record(nid, name, attempts, scheduled_from or published_at, result)

    def _claim(
        self, subscription: str | None, notification_id: int | None
    ) -> tuple[int, str, int, str | None, str, str, str, str] | None:
        now = iso(self._clock())
        # subscription None: any of a subscription this worker does not know
        known = orjson.dumps(list(self.subscriptions)).decode()
        with self.db.transaction() as conn:  # one write transaction: no other claimant in between
            row = conn.execute(
                "SELECT d.notification_id, d.subscription, d.attempts, d.scheduled_from,"
                " n.subject, n.message, n.attributes, n.published_at"
                " FROM deliveries d JOIN notifications n ON n.id = d.notification_id"
                " WHERE d.status IN ('pending', 'retrying') AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?)"
                " AND CASE WHEN ? IS NULL THEN d.subscription NOT IN (SELECT value FROM json_each(?))"
                " ELSE d.subscription = ? END"
                " AND (? IS NULL OR d.notification_id = ?)"
                " ORDER BY d.next_attempt_at, d.notification_id LIMIT 1",
                (now, subscription, known, subscription, notification_id, notification_id),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE deliveries SET status = 'sending', owner = ?, attempts = attempts + 1, updated_at = ?"
                " WHERE notification_id = ? AND subscription = ?",
                (self.owner, now, row[0], row[1]),
            )
        return (int(row[0]), str(row[1]), int(row[2]) + 1, row[3], row[4], row[5], row[6], row[7])

    def _record(self, nid: int, name: str, attempts: int, scheduled_from: str, result: Attempt) -> Sent:
        now = self._clock()
        next_at: str | None = None
        if result.delivered:
            status = "delivered"
        elif not result.transient:
            status = "failed"
        else:
            deadline = _parse(scheduled_from, now) + self.horizon
            if now >= deadline:
                status = "failed"  # out of time: failed for good, with the last reason
            else:
                wait = self.backoff.delay(attempts, retry_after=retry_after_seconds(result.retry_after, now))
                status, next_at = "retrying", iso(min(now + timedelta(seconds=wait), deadline))
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET status = ?, error = ?, next_attempt_at = ?, owner = NULL, updated_at = ?"
                " WHERE notification_id = ? AND subscription = ? AND status = 'sending' AND owner = ?",
                (status, result.error, next_at, iso(now), nid, name, self.owner),
            )
        if cursor.rowcount == 0:  # taken back meanwhile (e.g. by `redeliver`): its new owner records it
            log.info("delivery of notification %s to %s was taken over while sending", nid, name)
        elif status != "delivered":
            log.warning("delivery of notification %s: %s (%s)", nid, result.error, status)
        return Sent(nid, name, status, result.error, attempts, next_at)

    def next_due_in(self, subscription: str) -> float | None:
        """Seconds until this subscription's next scheduled delivery (0 if one is due); None if none."""
        row = self.db.query(  # the claim's rows: a row it cannot take must not look due
            "SELECT MIN(COALESCE(d.next_attempt_at, '')) AS due FROM deliveries d"
            " JOIN notifications n ON n.id = d.notification_id"
            " WHERE d.subscription = ? AND d.status IN ('pending', 'retrying')",
            (subscription,),
        )[0]
        if row["due"] is None:
            return None
        return max(0.0, (_parse(row["due"], self._clock()) - self._clock()).total_seconds())

    # -- background ---------------------------------------------------------------------
    def start(self) -> None:
        """One daemon thread per subscription; interrupted deliveries are reclaimed first."""
        if self._run is not None or not self.subscriptions:
            return
        try:
            self.reclaim()
            while self.send_next(None) is not None:  # deliveries of subscriptions no longer configured
                pass
        except DocklineError as exc:  # the threads try again; never stop processing for this
            log.warning("delivery worker: %s", exc)
        # Each start has its own events: a thread left sending by a timed-out stop sees
        # its own run stopped, never a later one's.
        run = self._run = _Run({name: threading.Event() for name in self.subscriptions})
        for name in self.subscriptions:
            thread = threading.Thread(
                target=self._loop, args=(run, name), name=f"dockline-delivery-{name}", daemon=True
            )
            run.threads.append(thread)
            thread.start()

    def wake(self) -> None:
        """New deliveries were committed: look now instead of at the next poll."""
        run = self._run
        if run is not None:
            run.wake()

    def stop(self, grace_seconds: float) -> int:
        """Send what is due now for up to ``grace_seconds``, then stop. A subscription stops
        early at its first transient failure (its receiver is down: the rest wait for the
        next start). Returns how many threads were still busy when the grace ran out; their
        deliveries stay 'sending' under this owner and are reclaimed by the next start."""
        run, self._run = self._run, None
        if run is None:
            return 0
        deadline = time.monotonic() + max(grace_seconds, 0.0)
        run.draining.set()
        run.wake()
        for thread in run.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        run.stopping.set()
        run.wake()
        busy = sum(1 for thread in run.threads if thread.is_alive())
        if busy:
            log.warning("stopped with %d deliveries still in flight; they are sent again at the next start", busy)
        return busy

    @contextmanager
    def running(self, *, grace_seconds: float) -> Iterator[DeliveryWorker]:
        """Started for the block; stopped with ``grace_seconds`` to send what is due."""
        self.start()
        try:
            yield self
        finally:
            self.stop(grace_seconds)

    def _loop(self, run: _Run, name: str) -> None:
        wake = run.wakes[name]
        last_reclaim = time.monotonic()
        while not run.stopping.is_set():
            wake.clear()  # before looking: a commit after the look sets it again
            # Read before looking: stop() drains only after the run's last commit, so only a
            # look that began after draining was set has seen every delivery due at stop.
            draining = run.draining.is_set()
            try:
                if time.monotonic() - last_reclaim >= self.poll_seconds:
                    self.reclaim()
                    last_reclaim = time.monotonic()
                sent = self.send_next(name)
                if sent is not None:
                    if run.draining.is_set() and sent.status == "retrying":
                        return  # the receiver is down: the rest wait for their schedule
                    continue
                if draining:
                    return
                due = self.next_due_in(name)
            except DocklineError as exc:  # e.g. the database is busy or the disk full: try again
                log.warning("delivery worker (%s): %s", name, exc)
                due = 1.0
            except Exception:  # a bug must not end the deliveries silently
                log.exception("delivery worker (%s): internal error", name)
                due = self.poll_seconds
            # Never a hot loop, even if a row looks due that another process claims first.
            wake.wait(self.poll_seconds if due is None else min(max(due, 0.05), self.poll_seconds))


@dataclass
class _Run:
    """The events and threads of one start ... stop."""

    wakes: dict[str, threading.Event]
    threads: list[threading.Thread] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    draining: threading.Event = field(default_factory=threading.Event)

    def wake(self) -> None:
        for event in self.wakes.values():
            event.set()


def _parse(stamp: str, fallback: datetime) -> datetime:
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return fallback
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _orphaned(owner: str | None, updated_at: str, now: datetime) -> bool:
    """Is a 'sending' row's owner gone? At once for a process of this machine; after
    ``_FOREIGN_STALE`` for another machine's or an owner-less row."""
    host, _, rest = (owner or "").partition(":")
    pid_text, _, token = rest.partition(":")
    if not owner or host != _HOST or not pid_text.isdigit():
        return now - _parse(updated_at, now) > _FOREIGN_STALE
    pid = int(pid_text)
    if pid == os.getpid():
        return token not in _LIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False
