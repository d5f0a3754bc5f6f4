"""The ledger's rules, written once for every backend (the template method).

``LedgerBase.write`` does the backend-neutral work: it settles repeats of one id
inside a batch, hands the rest to the backend's ``_store`` hook, and assembles the
report. Whenever a backend finds an item already under a record's pk it asks
``judge`` what that means. So the conflict and duplicate rule lives here only, and
SQLite, DynamoDB and the in-memory reference cannot drift apart again.

Numbers compare by value because the canonical text writes each number in the
shortest form of its value (``jsonx``): ``26``, ``26.0`` and ``26.00`` hash alike.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from dockline.models import ConflictPolicy, ObjectRef, Record, WriteReport, is_newer
from dockline.ports import Ledger


class Verdict(StrEnum):
    """What one record does to the ledger."""

    WRITTEN = "written"  # new, or exactly what this object version wrote before
    DUPLICATE = "duplicate"  # identical content from another object version
    CONFLICT = "conflict"  # other content; the item in the way is kept
    REPLACE = "replace"  # other content, and this record wins: replace the item in the way


@dataclass(frozen=True, slots=True)
class Existing:
    """The item already stored under a pk, as far as the rule needs it."""

    bucket: str
    key: str
    version: str
    content_hash: str
    sequencer: str | None = None
    event_time: str | None = None
    # Written by an earlier run of this same version, which a reprocess is running again:
    # the new run's record takes its place whatever it holds (see ``judge``).
    stale: bool = False


def judge(ref: ObjectRef, record: Record, existing: Existing, policy: ConflictPolicy) -> tuple[Verdict, str]:
    """The rule for a record whose pk is taken. Returns the verdict and, for a
    conflict, where the kept version came from.

    - identical content: written again by the same object version (a re-delivery, a
      resumed file), else a duplicate;
    - other content from the same object version (the id appears twice in the file):
      the later line wins under ``overwrite``, else it is a conflict and the first
      line is kept -- on every backend;
    - other content from another version: ``overwrite`` lets the newer event win (S3
      sequencer, then event time; an older event never wins), else a conflict;
    - an item an earlier run of this same version wrote, before a reprocess reopened it
      (``stale``): replaced, identical or not, under every policy. It comes from the same
      bytes, so it is no conflict; it is rewritten even when identical so the backend knows
      the new run kept it (what the new run does not write again goes when it settles).
    """
    same_source = existing.bucket == ref.bucket and existing.key == ref.key and existing.version == ref.version
    if same_source and existing.stale:
        return Verdict.REPLACE, existing.key
    if existing.content_hash == record.content_hash:
        return (Verdict.WRITTEN if same_source else Verdict.DUPLICATE), existing.key
    if same_source:
        if policy is ConflictPolicy.OVERWRITE:
            return Verdict.REPLACE, existing.key
        where = f"{existing.key} (line {record.index})" if record.index else existing.key
        return Verdict.CONFLICT, where
    if policy is ConflictPolicy.OVERWRITE and is_newer(
        ref, key=existing.key, sequencer=existing.sequencer, event_time=existing.event_time
    ):
        return Verdict.REPLACE, existing.key
    return Verdict.CONFLICT, existing.key


# One verdict per record handed to ``_store``, in order; None: all written (the common case).
Verdicts = list[tuple[Verdict, str]] | None


class LedgerBase(Ledger):
    """A Ledger whose rules are shared; backends implement the storage hooks."""

    def write(self, ref: ObjectRef, records: Sequence[Record], *, policy: ConflictPolicy, now: str) -> WriteReport:
        """Insert ``records`` conditionally and classify each (see ``judge``).

        Raises TransientError, and PermanentError for a record the backend cannot store.
        """
        repeated = _repeats(ref, records, policy)
        stored = self._store(ref, records if repeated is None else list(repeated[0].values()), policy, now)
        return _assemble(records, repeated, stored)

    def write_batch(
        self, batch: Sequence[tuple[ObjectRef, Sequence[Record], ConflictPolicy]], *, now: str
    ) -> list[WriteReport]:
        """``write`` for many files at once, through ``_store_batch``: the same rule per
        record, each record judged against the files before it in the batch."""
        repeats = [_repeats(ref, records, policy) for ref, records, policy in batch]
        stored = self._store_batch(
            [
                (ref, records if rep is None else list(rep[0].values()), policy)
                for (ref, records, policy), rep in zip(batch, repeats, strict=True)
            ],
            now,
        )
        return [
            _assemble(records, rep, verdicts)
            for (_, records, _), rep, verdicts in zip(batch, repeats, stored, strict=True)
        ]

    @abstractmethod
    def _store(self, ref: ObjectRef, records: Sequence[Record], policy: ConflictPolicy, now: str) -> Verdicts:
        """Insert records whose pks are distinct; judge each pk already taken with
        ``judge`` and carry out a REPLACE (conditionally: judge again if the item changed
        meanwhile). Returns a verdict per record (never REPLACE), or None if all written."""

    def _store_batch(
        self, batch: Sequence[tuple[ObjectRef, Sequence[Record], ConflictPolicy]], now: str
    ) -> list[Verdicts]:
        """``_store`` for each file, in order (a backend may do it in fewer statements, with
        the same verdicts: a file's records judged after the files before it were stored)."""
        return [self._store(ref, records, policy, now) for ref, records, policy in batch]


_Repeats = tuple[dict[str, Record], dict[int, tuple[Verdict, str]]] | None


def _repeats(ref: ObjectRef, records: Sequence[Record], policy: ConflictPolicy) -> _Repeats:
    """None when no id is twice in ``records`` (the common case), else ``_first_of_each``."""
    pks = {r.pk for r in records}
    return None if len(pks) == len(records) else _first_of_each(ref, records, policy)


def _assemble(records: Sequence[Record], repeated: _Repeats, stored: Verdicts) -> WriteReport:
    if repeated is None:
        return _report(records, stored)
    unique, repeats = repeated
    by_pk = dict(zip(unique, stored or [(Verdict.WRITTEN, "")] * len(unique), strict=True))
    return _report(records, [repeats.get(i) or by_pk[r.pk] for i, r in enumerate(records)])


def _first_of_each(
    ref: ObjectRef, records: Sequence[Record], policy: ConflictPolicy
) -> tuple[dict[str, Record], dict[int, tuple[Verdict, str]]]:
    """The record to store per pk, and the verdicts of the repeats, judged against the
    record kept so far exactly as a backend would judge them against a stored item."""
    unique: dict[str, Record] = {}
    repeats: dict[int, tuple[Verdict, str]] = {}
    for position, record in enumerate(records):
        kept = unique.get(record.pk)
        if kept is None:
            unique[record.pk] = record
            continue
        existing = Existing(ref.bucket, ref.key, ref.version, kept.content_hash, ref.sequencer, ref.event_time)
        verdict, origin = judge(ref, record, existing, policy)
        if verdict is Verdict.REPLACE:
            unique[record.pk] = record  # the later line wins; it is stored instead
            verdict = Verdict.WRITTEN
        repeats[position] = (verdict, origin)
    return unique, repeats


def _report(records: Sequence[Record], verdicts: Verdicts) -> WriteReport:
    if verdicts is None:
        return WriteReport(written=tuple(r.pk for r in records))
    written: list[str] = []
    duplicates: list[str] = []
    conflicts: list[tuple[str, str]] = []
    for record, (verdict, origin) in zip(records, verdicts, strict=True):
        if verdict is Verdict.DUPLICATE:
            duplicates.append(record.pk)
        elif verdict is Verdict.CONFLICT:
            conflicts.append((record.pk, origin))
        else:
            written.append(record.pk)
    return WriteReport(tuple(written), tuple(duplicates), tuple(conflicts))
