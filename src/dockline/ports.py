"""The three (plus one) things the core talks to. Each engine supplies its own.

Local engine: FolderStore, SQLiteLedger, LocalTopic, SQLiteDeadLetters.
AWS engine:   S3Store, DynamoDBLedger, SNSNotifier, SQSDeadLetters.

Contract of the ledger, shared by every backend (tests/contract runs one suite
against all of them):

- ``begin(ref)`` claims one object version for this attempt. It returns ``None``
  to go ahead, or the settled ``Outcome`` when that version was settled before (a
  re-delivery); ``outcome.notified`` then says whether its notification went out.
  A backend may claim lazily (DynamoDB in document mode claims in ``write``).
  Raises ``BusyError`` while another worker holds a live lease.
- ``write(ref, records, ...)`` inserts items conditionally and classifies each
  record: written (new, or the same object version again), duplicate (same id,
  identical content, from another object), conflict (same id, other content; with
  ``ConflictPolicy.OVERWRITE`` the newer event by sequencer/event time wins and
  counts as written). It never writes a second row for one pk.
- ``settle(outcome)`` records the final state with ``notified = false`` (the
  outbox) and returns whether a notification is still owed (``False`` when an
  earlier delivery already sent it). A backend that claims lazily learns only here
  that the version was settled and announced before this attempt: it returns
  ``SettledBefore`` (falsy: nothing is owed) with the state recorded then, so the
  core reports the file as ``Outcome.earlier``, as ``begin`` lets it elsewhere.
- ``mark_notified(outcome)`` closes the outbox entry after a successful publish.
- ``discard(ref)`` removes every item that version wrote, before it settles as
  failed: a failed file leaves nothing in the ledger.
- ``reopen(ref)`` forgets a failed version's final state, so a redrive can settle it anew.
- ``reprocess(ref)`` reopens a settled version so it runs again (``dockline reprocess``):
  its items stay, marked stale, until the new run writes them again (``judge`` replaces
  them); ``settle`` then removes the stale items the new run did not write (a record now
  skipped). Until it settles the version is unsettled, so any run finishes it after a
  crash. ``reprocessing(ref)`` tells the pipeline it runs such a version (its Outcome and
  notification say ``reprocessed``). Backends that cannot do this keep the defaults.

The conflict and duplicate rule every backend follows is ``dockline.ledger.judge``.

Batches (``dockline.batch``): ``begin_batch``, ``write_batch``, ``settle_batch`` and
``mark_notified_batch`` (and ``Notifier.publish_batch``, ``DeadLetters.resolve_batch``) do
for many object versions what the per-file methods do for one, with the same results per
file. The base classes do it file by file; a backend overrides them where one statement
can serve many files (SQLite, the local topic).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import BinaryIO

from dockline.errors import BusyError, DocklineError
from dockline.models import ConflictPolicy, DeadLetter, Notification, ObjectRef, Outcome, Record, WriteReport


class Unclaimed:
    """``Ledger.begin_batch`` left this version alone: take it on its own, with ``begin``."""


Claim = Outcome | BusyError | Unclaimed | None  # what begin_batch says of one version


class SettledBefore:
    """What ``Ledger.settle`` returns when the write that settles finds the version settled
    and announced before this attempt (a re-delivery the ledger did not see in ``begin``,
    because it claims lazily). Falsy, like ``False``: no notification is owed. ``prior``:
    the state recorded then, which the core reports as ``Outcome.earlier``."""

    __slots__ = ("prior",)

    def __init__(self, prior: Outcome) -> None:
        self.prior = prior

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"SettledBefore({self.prior.ref.identity}, {self.prior.status})"


Owed = bool | SettledBefore  # what settle says of one version: is its notification still owed?


class ObjectStore(ABC):
    """Reads object versions as binary streams."""

    @abstractmethod
    def open(self, ref: ObjectRef) -> AbstractContextManager[BinaryIO]:
        """Open ``ref`` for streaming reads.

        Raises ObjectGoneError when the object (version) no longer exists,
        PermanentError when it can never be read (a symlink, a special file),
        TransientError for anything worth retrying.
        """

    def content_sha256(self, ref: ObjectRef) -> str | None:
        """The SHA-256 the bytes of ``ref`` must have, when the store knows it (a local
        object's version is its hash); None when it does not (S3's ETag is not one)."""
        return None


class Ledger(ABC):
    """Items plus the state of every object version. See the module docstring."""

    @abstractmethod
    def begin(self, ref: ObjectRef, *, now: str) -> Outcome | None:
        """Claim ``ref``; return its settled outcome if it has one. Raises BusyError."""

    @abstractmethod
    def write(
        self,
        ref: ObjectRef,
        records: Sequence[Record],
        *,
        policy: ConflictPolicy,
        now: str,
    ) -> WriteReport:
        """Insert ``records`` conditionally and classify each. Raises TransientError."""

    @abstractmethod
    def settle(self, outcome: Outcome, *, now: str) -> Owed:
        """Record the final state; return True when a notification is still owed
        (``SettledBefore`` when the version had been settled and announced before)."""

    @abstractmethod
    def mark_notified(self, outcome: Outcome) -> None:
        """Record that the notification for ``outcome`` was published."""

    def begin_batch(self, refs: Sequence[ObjectRef], *, now: str) -> list[Claim]:
        """``begin`` for each ref, in order; a BusyError is returned in its place, not
        raised. A backend may leave a version unclaimed (``Unclaimed``: one a reprocess
        reopened, whose run is long), for the caller to take on its own with ``begin``.
        Raises TransientError (then no ref is claimed where the backend is atomic)."""
        claims: list[Claim] = []
        for ref in refs:
            try:
                claims.append(self.begin(ref, now=now))
            except BusyError as exc:
                claims.append(exc)
        return claims

    def write_batch(
        self, batch: Sequence[tuple[ObjectRef, Sequence[Record], ConflictPolicy]], *, now: str
    ) -> list[WriteReport]:
        """``write`` for each (ref, records, policy), in order: a record is judged against
        the items of the files before it in the batch exactly as in separate calls."""
        return [self.write(ref, records, policy=policy, now=now) for ref, records, policy in batch]

    def settle_batch(self, outcomes: Sequence[Outcome], *, now: str) -> Sequence[Owed]:
        """``settle`` for each outcome, in order: whether each still owes its notification."""
        return [self.settle(outcome, now=now) for outcome in outcomes]

    def mark_notified_batch(self, outcomes: Sequence[Outcome]) -> None:
        """``mark_notified`` for each outcome."""
        for outcome in outcomes:
            self.mark_notified(outcome)

    @abstractmethod
    def discard(self, ref: ObjectRef) -> None:
        """Delete the items whose source is exactly ``ref`` (items other versions own
        stay). Raises TransientError."""

    @abstractmethod
    def reopen(self, ref: ObjectRef, *, now: str) -> bool:
        """Forget that ``ref`` failed; returns whether it had failed. Raises TransientError."""

    def reprocess(self, ref: ObjectRef, *, now: str) -> bool:
        """Reopen the settled version ``ref`` to run it again (see the module docstring).
        Returns False when it is not settled with its outbox closed (in flight, its
        notification still owed, unknown). Raises DocklineError where not supported."""
        raise DocklineError(f"{type(self).__name__} cannot reprocess files")

    def reprocessing(self, ref: ObjectRef) -> bool:
        """Is the version this worker just claimed (``begin``) one that a reprocess reopened?"""
        return False


class Notifier(ABC):
    """Publishes one notification per settled file."""

    @abstractmethod
    def publish(self, notification: Notification) -> None:
        """Publish; raises TransientError when the topic cannot take it now."""

    def publish_batch(self, notifications: Sequence[Notification]) -> None:
        """``publish`` each, in order. Raises TransientError; then, where the topic is not
        atomic (the base class), the ones before may have gone out."""
        for notification in notifications:
            self.publish(notification)


class DeadLetters(ABC):
    """Where files that failed for good, or ran out of retries, wait for a redrive."""

    @abstractmethod
    def send(self, letter: DeadLetter) -> None:
        """Store ``letter``. Raises TransientError."""

    @abstractmethod
    def list(self) -> Iterator[DeadLetter]:
        """Every letter not yet redriven, oldest first."""

    @abstractmethod
    def remove(self, letter_id: str) -> None:
        """Drop a letter after a successful redrive."""

    def resolve(self, ref: ObjectRef) -> int:
        """Drop the letters of other versions of ``ref``'s key, now that ``ref`` settled
        well; returns how many. Stores that cannot address letters (SQS) keep them: a
        redrive then finds the newer version."""
        return 0

    def resolve_batch(self, refs: Sequence[ObjectRef]) -> int:
        """``resolve`` each ref; returns how many letters went."""
        return sum(self.resolve(ref) for ref in refs)
