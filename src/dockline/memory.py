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
from dockline.models import (
    ConflictPolicy,
    DeadLetter,
    Notification,
    ObjectRef,
    Outcome,
    Record,
    Status,
    WriteReport,
    is_newer,
)
from dockline.ports import DeadLetters, Ledger, Notifier, ObjectStore


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


class MemoryLedger(Ledger):
    def __init__(self) -> None:
        self.items: dict[str, StoredItem] = {}
        self.files: dict[tuple[str, str, str], Outcome] = {}
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

    def write(self, ref: ObjectRef, records: Sequence[Record], *, policy: ConflictPolicy, now: str) -> WriteReport:
        written: list[str] = []
        duplicates: list[str] = []
        conflicts: list[tuple[str, str]] = []
        with self._lock:
            for record in records:
                existing = self.items.get(record.pk)
                if existing is None or self._id(existing.ref) == self._id(ref):
                    self.items[record.pk] = StoredItem(record, ref, now)
                    written.append(record.pk)
                elif existing.record.content_hash == record.content_hash:
                    duplicates.append(record.pk)
                elif policy is ConflictPolicy.OVERWRITE and is_newer(
                    ref, key=existing.ref.key, sequencer=existing.ref.sequencer, event_time=existing.ref.event_time
                ):
                    self.items[record.pk] = StoredItem(record, ref, now)
                    written.append(record.pk)
                else:
                    conflicts.append((record.pk, existing.ref.key))
        return WriteReport(tuple(written), tuple(duplicates), tuple(conflicts))

    def settle(self, outcome: Outcome, *, now: str) -> bool:
        with self._lock:
            prior = self.files.get(self._id(outcome.ref))
            if prior is not None and prior.status.is_final:
                return not prior.notified
            attempts = max(outcome.attempts, prior.attempts if prior else 1)
            self.files[self._id(outcome.ref)] = replace(outcome, attempts=attempts, notified=False)
            return True

    def mark_notified(self, outcome: Outcome) -> None:
        with self._lock:
            key = self._id(outcome.ref)
            self.files[key] = replace(self.files[key], notified=True)


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
