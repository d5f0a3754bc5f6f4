"""In-memory adapters: the reference implementation of the ports' contracts.

Used by the core's unit tests and as the third backend of the shared ledger
contract suite; also handy for embedding dockline in other tests.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from dockline.errors import ObjectGoneError
from dockline.ledger import Existing, LedgerBase, Verdict, Verdicts, judge
from dockline.models import ConflictPolicy, DeadLetter, Notification, ObjectRef, Outcome, Record, Status
from dockline.ports import DeadLetters, Notifier, ObjectStore


class MemoryStore(ObjectStore):
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.objects[(bucket, key)] = data

    def open(self, ref: ObjectRef) -> AbstractContextManager[BinaryIO]:
        try:
            data = self.objects[(ref.bucket, ref.key)]
        except KeyError:
            raise ObjectGoneError("object no longer exists") from None
        return nullcontext(io.BytesIO(data))


@dataclass
class StoredItem:
    record: Record
    ref: ObjectRef
    written_at: str
    notified: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    generation: int = 0  # the run of its version that wrote it (see MemoryLedger.reprocess)


class MemoryLedger(LedgerBase):
    def __init__(self) -> None:
        self.items: dict[str, StoredItem] = {}
        self.files: dict[tuple[str, str, str], Outcome] = {}
        # How often each version was reopened by a reprocess; its items of a lower
        # generation are stale until the new run writes them again.
        self.generations: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _id(ref: ObjectRef) -> tuple[str, str, str]:
        return (ref.bucket, ref.key, ref.version)

    def begin(self, ref: ObjectRef, *, now: str) -> Outcome | None:
        with self._lock:
            prior = self.files.get(self._id(ref))
            if prior is not None and prior.status.is_final:
                return prior
            attempts = prior.attempts + 1 if prior is not None else 1
            self.files[self._id(ref)] = Outcome(ref=ref, status=Status.PROCESSING, attempts=attempts)
            return None

    def _store(self, ref: ObjectRef, records: Sequence[Record], policy: ConflictPolicy, now: str) -> Verdicts:
        verdicts: list[tuple[Verdict, str]] = []
        with self._lock:
            generation = self.generations.get(self._id(ref), 0)
            for record in records:
                stored = self.items.get(record.pk)
                verdict, origin = Verdict.WRITTEN, ""
                if stored is not None:
                    existing = Existing(
                        stored.ref.bucket,
                        stored.ref.key,
                        stored.ref.version,
                        stored.record.content_hash,
                        stored.ref.sequencer,
                        stored.ref.event_time,
                        stale=self._id(stored.ref) == self._id(ref) and stored.generation < generation,
                    )
                    verdict, origin = judge(ref, record, existing, policy)
                if stored is None or verdict is Verdict.REPLACE:
                    self.items[record.pk] = StoredItem(record, ref, now, generation=generation)
                    verdict = Verdict.WRITTEN
                verdicts.append((verdict, origin))
        return verdicts

    def settle(self, outcome: Outcome, *, now: str) -> bool:
        with self._lock:
            prior = self.files.get(self._id(outcome.ref))
            if prior is not None and prior.status.is_final:
                return not prior.notified
            attempts = max(outcome.attempts, prior.attempts if prior else 1)
            owed = outcome.status.owes_notification
            self._sweep(outcome.ref)
            again = outcome.reprocessed or self.generations.get(self._id(outcome.ref), 0) > 0
            settled = replace(outcome, attempts=attempts, notified=not owed, reprocessed=again)
            self.files[self._id(outcome.ref)] = settled
            return owed

    def mark_notified(self, outcome: Outcome) -> None:
        with self._lock:
            key = self._id(outcome.ref)
            self.files[key] = replace(self.files[key], notified=True)

    def discard(self, ref: ObjectRef) -> None:
        with self._lock:
            for pk in [pk for pk, item in self.items.items() if self._id(item.ref) == self._id(ref)]:
                del self.items[pk]

    def _sweep(self, ref: ObjectRef) -> None:
        """Drop the stale items of ``ref``: those the run settling now did not write again."""
        mine, generation = self._id(ref), self.generations.get(self._id(ref), 0)
        if generation:
            stale = [pk for pk, x in self.items.items() if self._id(x.ref) == mine and x.generation < generation]
            for pk in stale:
                del self.items[pk]

    def reprocess(self, ref: ObjectRef, *, now: str) -> bool:
        with self._lock:
            prior = self.files.get(self._id(ref))
            if prior is None or not prior.status.is_final or (prior.status.owes_notification and not prior.notified):
                return False
            self.generations[self._id(ref)] = self.generations.get(self._id(ref), 0) + 1
            self.files[self._id(ref)] = replace(prior, status=Status.PENDING, notified=False, reprocessed=True)
            return True

    def reprocessing(self, ref: ObjectRef) -> bool:
        with self._lock:
            return self.generations.get(self._id(ref), 0) > 0

    def reopen(self, ref: ObjectRef, *, now: str) -> bool:
        with self._lock:
            prior = self.files.get(self._id(ref))
            if prior is None or prior.status is not Status.FAILED:
                return False
            del self.files[self._id(ref)]
            return True


class MemoryTopic(Notifier):
    def __init__(self) -> None:
        self.messages: list[Notification] = []

    def publish(self, notification: Notification) -> None:
        self.messages.append(notification)


class MemoryDeadLetters(DeadLetters):
    def __init__(self) -> None:
        self.letters: dict[str, DeadLetter] = {}

    def send(self, letter: DeadLetter) -> None:
        self.letters[letter.id] = letter

    def list(self) -> Iterator[DeadLetter]:
        return iter(list(self.letters.values()))

    def remove(self, letter_id: str) -> None:
        self.letters.pop(letter_id, None)

    def resolve(self, ref: ObjectRef) -> int:
        stale = [i for i, x in self.letters.items() if (x.ref.bucket, x.ref.key) == (ref.bucket, ref.key)]
        stale = [i for i in stale if self.letters[i].ref.version != ref.version]
        for letter_id in stale:
            del self.letters[letter_id]
        return len(stale)
