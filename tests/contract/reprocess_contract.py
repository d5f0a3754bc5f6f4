"""The replace rule of a reprocess (issue 10, item 6), one contract for every backend that can
reprocess (memory, SQLite; DynamoDB keeps the port's default "cannot").

A backend's test module subclasses ``ReprocessContract`` and overrides ``ledger`` and
``contents`` (pk -> content hash of the items stored now: the one look past the port).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from dockline.models import ConflictPolicy, ObjectRef, Outcome, Record, Status
from dockline.ports import Ledger
from tests.contract.ledger_contract import NOW, record, ref

Contents = Callable[[], dict[str, str]]


def settle(ledger: Ledger, r: ObjectRef, status: Status = Status.PROCESSED, records: int = 0) -> Outcome:
    """Settle ``r`` and close its outbox, as the pipeline does once it published."""
    outcome = Outcome(ref=r, status=status, records=records, error=None if status is Status.PROCESSED else "x")
    if ledger.settle(outcome, now=NOW):
        ledger.mark_notified(outcome)
    return outcome


def first_run(ledger: Ledger, r: ObjectRef, records: Sequence[Record]) -> None:
    assert ledger.begin(r, now=NOW) is None
    ledger.write(r, records, policy=ConflictPolicy.REJECT, now=NOW)
    settle(ledger, r, records=len(records))


def hashes(*records: Record) -> dict[str, str]:
    return {r.pk: r.content_hash for r in records}


A = record("a", {"id": "a", "qty": "1"}, index=1)
A_TYPED = record("a", {"id": "a", "qty": 1}, index=1)
B = record("b", {"id": "b", "qty": "2"}, index=2)
B_TYPED = record("b", {"id": "b", "qty": 2}, index=2)
C = record("c", {"id": "c", "qty": "x"}, index=3)  # skipped once qty must be an int


class ReprocessContract:
    @pytest.fixture
    def ledger(self) -> Ledger:  # pragma: no cover - overridden
        raise AssertionError("override the ledger fixture")

    @pytest.fixture
    def contents(self, ledger: Ledger) -> Contents:  # pragma: no cover - overridden
        raise AssertionError("override the contents fixture")

    def test_reprocess_replaces_the_versions_own_items_and_removes_what_it_no_longer_writes(
        self, ledger: Ledger, contents: Contents
    ) -> None:
        # GIVEN a CSV file settled with three string-typed records
        r = ref("incoming/orders.csv")
        first_run(ledger, r, [A, B, C])
        # WHEN csv_schema makes qty an int (c is now skipped) and the file is reprocessed
        assert ledger.reprocess(r, now=NOW) is True
        assert ledger.begin(r, now=NOW) is None
        assert ledger.reprocessing(r) is True
        report = ledger.write(r, [A_TYPED, B_TYPED], policy=ConflictPolicy.REJECT, now=NOW)
        settle(ledger, r, records=2)
        # THEN its items are replaced, not conflicted, and c, no longer written, is gone
        assert report.written == ("a", "b") and report.conflicts == () and report.duplicates == ()
        assert contents() == hashes(A_TYPED, B_TYPED)

    def test_reprocess_replaces_identical_items_too_and_twice_gives_the_same_items(
        self, ledger: Ledger, contents: Contents
    ) -> None:
        r = ref("incoming/orders.csv")
        first_run(ledger, r, [A, B, C])
        for _ in range(2):
            assert ledger.reprocess(r, now=NOW) is True
            assert ledger.begin(r, now=NOW) is None
            # one record unchanged (identical content), one changed
            report = ledger.write(r, [A, B_TYPED], policy=ConflictPolicy.REJECT, now=NOW)
            settle(ledger, r, records=2)
            assert report.written == ("a", "b")
            # the identical item a was rewritten by this run, so it is kept
            assert contents() == hashes(A, B_TYPED)

    def test_a_pk_another_file_wrote_stays_a_conflict(self, ledger: Ledger, contents: Contents) -> None:
        # GIVEN b written by another file first, then orders.csv (b a conflict there)
        other = ref("incoming/other.csv")
        first_run(ledger, other, [B])
        r = ref("incoming/orders.csv")
        assert ledger.begin(r, now=NOW) is None
        first = ledger.write(r, [A, B_TYPED], policy=ConflictPolicy.REJECT, now=NOW)
        assert first.conflicts == (("b", "incoming/other.csv"),)
        settle(ledger, r, Status.CONFLICT, records=1)
        # WHEN orders.csv is reprocessed
        assert ledger.reprocess(r, now=NOW) is True
        assert ledger.begin(r, now=NOW) is None
        again = ledger.write(r, [A_TYPED, B_TYPED], policy=ConflictPolicy.REJECT, now=NOW)
        settle(ledger, r, Status.CONFLICT, records=1)
        # THEN replacement is only of its own items: b is still the other file's, a conflict
        assert again.written == ("a",)
        assert again.conflicts == (("b", "incoming/other.csv"),)
        assert contents() == hashes(A_TYPED, B)

    def test_under_overwrite_the_reprocess_replaces_its_own_items_as_well(
        self, ledger: Ledger, contents: Contents
    ) -> None:
        r = ref("incoming/orders.csv")
        first_run(ledger, r, [A, B, C])
        assert ledger.reprocess(r, now=NOW) is True
        assert ledger.begin(r, now=NOW) is None
        report = ledger.write(r, [A_TYPED], policy=ConflictPolicy.OVERWRITE, now=NOW)
        settle(ledger, r, records=1)
        assert report.written == ("a",)
        assert contents() == hashes(A_TYPED)

    def test_one_id_twice_in_the_file_is_still_a_conflict_after_a_reprocess(self, ledger: Ledger) -> None:
        # GIVEN a settled file; on reprocess its id a comes twice with other content, in two batches
        r = ref("incoming/orders.csv")
        first_run(ledger, r, [A])
        assert ledger.reprocess(r, now=NOW) is True
        assert ledger.begin(r, now=NOW) is None
        first = ledger.write(r, [A_TYPED], policy=ConflictPolicy.REJECT, now=NOW)
        second = ledger.write(r, [record("a", {"id": "a", "qty": 3}, index=4)], policy=ConflictPolicy.REJECT, now=NOW)
        # THEN the first line replaces the old item and the second is a conflict, as in a first run
        assert first.written == ("a",)
        assert [pk for pk, _ in second.conflicts] == ["a"]

    def test_a_reprocess_cut_short_is_finished_by_the_next_run_with_the_same_items(
        self, ledger: Ledger, contents: Contents
    ) -> None:
        # GIVEN a reprocess that wrote its first batch and died before settling
        r = ref("incoming/orders.csv")
        first_run(ledger, r, [A, B, C])
        assert ledger.reprocess(r, now=NOW) is True
        assert ledger.begin(r, now=NOW) is None
        ledger.write(r, [A_TYPED], policy=ConflictPolicy.REJECT, now=NOW)
        # WHEN any run takes the version again (it is not settled) and runs it whole
        assert ledger.begin(r, now=NOW) is None
        assert ledger.reprocessing(r) is True
        report = ledger.write(r, [A_TYPED, B_TYPED], policy=ConflictPolicy.REJECT, now=NOW)
        outcome = settle(ledger, r, records=2)
        # THEN the items are what one clean reprocess gives: nothing doubled, nothing stale
        assert report.written == ("a", "b") and report.conflicts == ()
        assert contents() == hashes(A_TYPED, B_TYPED)
        # AND a re-delivery finds it settled, marked reprocessed
        prior = ledger.begin(r, now=NOW)
        assert prior is not None and prior.status is outcome.status and prior.reprocessed

    def test_a_reprocess_that_fails_leaves_no_items_of_the_version(self, ledger: Ledger, contents: Contents) -> None:
        other = ref("incoming/other.csv")
        first_run(ledger, other, [B])
        r = ref("incoming/orders.csv")
        first_run(ledger, r, [A, C])
        assert ledger.reprocess(r, now=NOW) is True
        assert ledger.begin(r, now=NOW) is None
        # WHEN the file now fails on its first line (nothing written, so nothing discarded)
        settle(ledger, r, Status.FAILED)
        # THEN its old items are gone too, as for any failed file; the other file's stay
        assert contents() == hashes(B)

    def test_only_a_settled_version_with_its_outbox_closed_is_reopened(self, ledger: Ledger) -> None:
        unknown, flying, owed, dup = (ref(f"incoming/{n}.json") for n in ("unknown", "flying", "owed", "dup"))
        assert ledger.begin(flying, now=NOW) is None
        assert ledger.begin(owed, now=NOW) is None
        assert ledger.settle(Outcome(ref=owed, status=Status.PROCESSED), now=NOW) is True  # not sent yet
        assert ledger.begin(dup, now=NOW) is None
        ledger.settle(Outcome(ref=dup, status=Status.DUPLICATE, error="dup"), now=NOW)  # owes nothing
        assert ledger.reprocess(unknown, now=NOW) is False
        assert ledger.reprocess(flying, now=NOW) is False
        assert ledger.reprocess(owed, now=NOW) is False
        assert ledger.reprocess(dup, now=NOW) is True
        # a first run is not a reprocess
        fresh = ref("incoming/fresh.json")
        assert ledger.begin(fresh, now=NOW) is None
        assert ledger.reprocessing(fresh) is False
