"""Plain values that flow through the pipeline: frozen dataclasses and enums, no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Where one object version stands. All but the first two are final."""

    PENDING = "pending"  # seen, waiting for a worker
    PROCESSING = "processing"  # a worker holds the lease
    PROCESSED = "processed"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    # The version was replaced by a newer one before it could be read: a harmless race,
    # not a failure (no failure notification, no dead letter); the newer version has its
    # own event.
    SUPERSEDED = "superseded"

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    @property
    def owes_notification(self) -> bool:
        """Does settling in this state send a notification? A duplicate adds nothing and a
        superseded version is a harmless race: neither is announced."""
        return self in _NOTIFIED


_FINAL = frozenset({Status.PROCESSED, Status.FAILED, Status.DUPLICATE, Status.CONFLICT, Status.SUPERSEDED})
_NOTIFIED = frozenset({Status.PROCESSED, Status.FAILED, Status.CONFLICT})


class ConflictPolicy(StrEnum):
    """What to do when a business id is already in the ledger with other content."""

    REJECT = "reject"  # keep the first version, record and notify the conflict
    OVERWRITE = "overwrite"  # newer (by S3 sequencer, then event time) replaces older


class BadRecordPolicy(StrEnum):
    """What a bad record inside an otherwise good multi-record file does."""

    FAIL_FILE = "fail_file"
    SKIP = "skip"


class RecordMode(StrEnum):
    """How a ``.json`` file maps to ledger items."""

    DOCUMENT = "document"  # one item per file (the seed's behaviour)
    SPLIT = "split"  # a top-level array gives one item per element
    LINES = "lines"  # the file is JSON Lines whatever its suffix (e.g. AWS's ".log.gz")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One version of one object in a bucket.

    ``version`` identifies the content: the S3 version id or ETag on AWS, the SHA-256
    of the bytes locally. ``sequencer`` orders S3 events for the same key.
    """

    bucket: str
    key: str
    version: str
    size: int | None = None
    sequencer: str | None = None
    event_time: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def identity(self) -> str:
        """A printable id for this object version (used in file markers and DLQ ids)."""
        return f"{self.bucket}/{self.key}@{self.version}"


@dataclass(slots=True)  # not frozen: a million of these per big file, and frozen init costs 4x
class Record:
    """One decoded document or record, ready to become a ledger item.

    ``payload`` is ``None`` when the document is too big to store inline; then
    ``oversized`` is set and the item carries a reference to the object instead.
    Its numbers are ints, Decimals, or floats that are exact (see ``jsonx``);
    ``jsonx.exact_payload`` gives a float-free copy. ``canonical`` is the payload as
    canonical JSON and ``content_hash`` its SHA-256. ``index`` is the 1-based line,
    row or element number in per-record mode.
    """

    pk: str
    payload: Any
    digest: str | None = None  # SHA-256 of ``canonical``; computed on first use when None
    index: int | None = None
    oversized: bool = False
    payload_bytes: int = 0
    canonical: str = ""  # str, not bytes: orjson's bytes keep a 4 KiB buffer each
    route: str = "default"  # the name of the route that read it (``routes``)

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the canonical payload: equal hashes mean identical content."""
        if self.digest is None:
            self.digest = hashlib.sha256(self.canonical.encode()).hexdigest()
        return self.digest


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record that could not be decoded, kept for the file's explanation."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """What decoding one object gives: the records, the bad ones skipped, its hash."""

    records: tuple[Record, ...]
    skipped: tuple[BadRecord, ...] = ()
    sha256: str = ""
    size: int = 0


@dataclass(frozen=True, slots=True)
class WriteReport:
    """How the ledger classified each record of one object version."""

    written: tuple[str, ...] = ()  # pks inserted (or overwritten), incl. re-deliveries
    duplicates: tuple[str, ...] = ()  # same id, identical content, other object
    conflicts: tuple[tuple[str, str], ...] = ()  # (pk, where the first version came from)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The final state of one object version, with a reason a person can read."""

    ref: ObjectRef
    status: Status
    pk: str | None = None
    error: str | None = None
    records: int = 0
    duplicates: int = 0
    conflicts: int = 0
    skipped: tuple[BadRecord, ...] = ()  # the first bad records skipped (at most 100)
    sha256: str | None = None
    attempts: int = 1
    notified: bool = False
    skipped_total: int = 0  # all bad records skipped
    reprocessed: bool = False  # settled by a run again of a version settled before (`dockline reprocess`)
    dropped: int = 0  # records the route's transform dropped (returned None for)
    # Settled and announced before this attempt (by another process, or an earlier delivery
    # of the same event): reported, never counted again as this attempt's work.
    earlier: bool = False


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for the topic: subject, body and filterable attributes."""

    subject: str
    message: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A file that failed for good or ran out of retries, ready to be redriven."""

    id: str
    ref: ObjectRef
    reason: str
    attempts: int
    failed_at: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def is_newer(incoming: ObjectRef, *, key: str, sequencer: str | None, event_time: str | None) -> bool:
    """Does ``incoming`` come after the event that wrote an existing item?

    S3's sequencer orders events for one key only: compare it (as hex, the shorter
    padded with zeros on the right) when both events are for the same key; otherwise
    compare event times. With nothing to compare, the later arrival wins.
    """
    if incoming.key == key and incoming.sequencer and sequencer:
        width = max(len(incoming.sequencer), len(sequencer))
        return incoming.sequencer.ljust(width, "0").upper() > sequencer.ljust(width, "0").upper()
    if incoming.event_time and event_time:
        return incoming.event_time > event_time
    return True
