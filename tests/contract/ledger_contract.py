"""One contract for every Ledger backend (memory, SQLite, DynamoDB on moto).

A backend's test module subclasses ``LedgerContract`` and overrides the ``ledger``
fixture. Every test goes through the public port only.
"""

from __future__ import annotations

import hashlib

import pytest

from dockline.jsonx import dumps, loads
from dockline.models import ConflictPolicy, ObjectRef, Outcome, Record, Status
from dockline.ports import Ledger, SettledBefore

NOW = "2026-11-27T00:00:00.000Z"


def record(pk: str, payload: dict[str, object], index: int | None = None) -> Record:
    canonical = dumps(payload)
    return Record(
        pk=pk,
        payload=payload,
        digest=hashlib.sha256(canonical).hexdigest(),
        index=index,
        payload_bytes=len(canonical),
        canonical=canonical.decode(),
    )


def ref(key: str, version: str = "v1", *, sequencer: str | None = None, event_time: str | None = None) -> ObjectRef:
    return ObjectRef(bucket="bucket", key=key, version=version, sequencer=sequencer, event_time=event_time)


class LedgerContract:
    @pytest.fixture
    def ledger(self) -> Ledger:  # pragma: no cover - overridden
        raise AssertionError("a backend's test class must override the ledger fixture")

    def test_new_version_is_claimed_then_settled_once(self, ledger: Ledger) -> None:
        # GIVEN a new object version
        r = ref("incoming/a.json")
        # WHEN it is claimed, written and settled
        assert ledger.begin(r, now=NOW) is None
        report = ledger.write(r, [record("a", {"id": "a"})], policy=ConflictPolicy.REJECT, now=NOW)
        owed = ledger.settle(Outcome(ref=r, status=Status.PROCESSED, pk="a", records=1), now=NOW)
        # THEN it was written and a notification is owed
        assert report.written == ("a",)
        assert owed is True

    def test_redelivery_after_notification_owes_nothing(self, ledger: Ledger) -> None:
        r = ref("incoming/a.json")
        ledger.begin(r, now=NOW)
        ledger.write(r, [record("a", {"id": "a"})], policy=ConflictPolicy.REJECT, now=NOW)
        outcome = Outcome(ref=r, status=Status.PROCESSED, pk="a", records=1)
        ledger.settle(outcome, now=NOW)
        ledger.mark_notified(outcome)
        # WHEN the same version is delivered again
        prior = ledger.begin(r, now=NOW)
        if prior is None:  # a lazily claiming backend finds out at write/settle time
            report = ledger.write(r, [record("a", {"id": "a"})], policy=ConflictPolicy.REJECT, now=NOW)
            assert report.written == ("a",)
            settled = ledger.settle(outcome, now=NOW)  # owes nothing: the version settled before
            assert isinstance(settled, SettledBefore)
            assert (settled.prior.status, settled.prior.notified) == (Status.PROCESSED, True)
        else:
            assert prior.status is Status.PROCESSED
            assert prior.notified is True

    def test_crash_between_settle_and_notify_leaves_notification_owed(self, ledger: Ledger) -> None:
        r = ref("incoming/a.json")
        ledger.begin(r, now=NOW)
        ledger.write(r, [record("a", {"id": "a"})], policy=ConflictPolicy.REJECT, now=NOW)
        outcome = Outcome(ref=r, status=Status.PROCESSED, pk="a", records=1)
        ledger.settle(outcome, now=NOW)
        # WHEN the process died before publishing, and the version comes again
        prior = ledger.begin(r, now=NOW)
        if prior is None:
            report = ledger.write(r, [record("a", {"id": "a"})], policy=ConflictPolicy.REJECT, now=NOW)
            assert report.written == ("a",)  # the same row, not a second one
            assert ledger.settle(outcome, now=NOW) is True
        else:
            assert prior.status is Status.PROCESSED
            assert prior.notified is False

    def test_same_id_identical_content_from_another_file_is_duplicate(self, ledger: Ledger) -> None:
        first, second = ref("incoming/a.json"), ref("incoming/b.json")
        ledger.begin(first, now=NOW)
        ledger.write(first, [record("x", {"id": "x", "n": 1})], policy=ConflictPolicy.REJECT, now=NOW)
        ledger.begin(second, now=NOW)
        report = ledger.write(second, [record("x", {"id": "x", "n": 1})], policy=ConflictPolicy.REJECT, now=NOW)
        assert report.duplicates == ("x",)
        assert report.written == ()

    def test_same_id_other_content_is_conflict_and_first_is_kept(self, ledger: Ledger) -> None:
        first, second = ref("incoming/a.json"), ref("incoming/b.json")
        ledger.begin(first, now=NOW)
        ledger.write(first, [record("x", {"id": "x", "n": 1})], policy=ConflictPolicy.REJECT, now=NOW)
        ledger.begin(second, now=NOW)
        report = ledger.write(second, [record("x", {"id": "x", "n": 2})], policy=ConflictPolicy.REJECT, now=NOW)
        assert report.written == ()
        assert [pk for pk, _ in report.conflicts] == ["x"]
        assert report.conflicts[0][1] == "incoming/a.json"
        # AND a third, identical to the first, is still a duplicate (the first was kept)
        third = ref("incoming/c.json")
        ledger.begin(third, now=NOW)
        again = ledger.write(third, [record("x", {"id": "x", "n": 1})], policy=ConflictPolicy.REJECT, now=NOW)
        assert again.duplicates == ("x",)

    def test_overwrite_policy_never_lets_an_older_event_win(self, ledger: Ledger) -> None:
        newer = ref("incoming/a.json", "v2", sequencer="0055AED6DCD90281E6", event_time="2026-01-01T00:00:02Z")
        older = ref("incoming/a.json", "v1", sequencer="0055AED6DCD90281E5", event_time="2026-01-01T00:00:01Z")
        ledger.begin(newer, now=NOW)
        ledger.write(newer, [record("x", {"id": "x", "n": 2})], policy=ConflictPolicy.OVERWRITE, now=NOW)
        # WHEN the older event arrives late
        ledger.begin(older, now=NOW)
        report = ledger.write(older, [record("x", {"id": "x", "n": 1})], policy=ConflictPolicy.OVERWRITE, now=NOW)
        # THEN it does not overwrite
        assert report.written == ()
        assert [pk for pk, _ in report.conflicts] == ["x"]
        # AND a newer one does
        newest = ref("incoming/a.json", "v3", sequencer="0055AED6DCD90281E7", event_time="2026-01-01T00:00:03Z")
        ledger.begin(newest, now=NOW)
        report = ledger.write(newest, [record("x", {"id": "x", "n": 3})], policy=ConflictPolicy.OVERWRITE, now=NOW)
        assert report.written == ("x",)

    def test_failed_file_is_settled_and_redelivery_owes_nothing_more(self, ledger: Ledger) -> None:
        r = ref("incoming/bad.json")
        assert ledger.begin(r, now=NOW) is None
        failed = Outcome(ref=r, status=Status.FAILED, error="truncated JSON")
        assert ledger.settle(failed, now=NOW) is True
        ledger.mark_notified(failed)
        prior = ledger.begin(r, now=NOW)
        if prior is None:
            settled = ledger.settle(failed, now=NOW)
            assert isinstance(settled, SettledBefore)
            assert (settled.prior.status, settled.prior.error) == (Status.FAILED, "truncated JSON")
        else:
            assert prior.status is Status.FAILED
            assert prior.error == "truncated JSON"
            assert prior.notified is True

    def test_a_fixed_file_under_the_same_key_is_a_new_version(self, ledger: Ledger) -> None:
        broken, fixed = ref("incoming/a.json", "v1"), ref("incoming/a.json", "v2")
        ledger.begin(broken, now=NOW)
        ledger.settle(Outcome(ref=broken, status=Status.FAILED, error="bad"), now=NOW)
        assert ledger.begin(fixed, now=NOW) is None
        report = ledger.write(fixed, [record("incoming/a.json", {"a": 1})], policy=ConflictPolicy.REJECT, now=NOW)
        assert report.written == ("incoming/a.json",)

    def test_many_records_are_classified_each(self, ledger: Ledger) -> None:
        r = ref("incoming/batch.jsonl")
        ledger.begin(r, now=NOW)
        records = [record(f"k{i}", {"id": f"k{i}", "v": i}, index=i) for i in range(1, 61)]
        report = ledger.write(r, records, policy=ConflictPolicy.REJECT, now=NOW)
        assert sorted(report.written) == sorted(f"k{i}" for i in range(1, 61))

    # -- issue 8, item 14: the engines disagreed ------------------------------------------
    def test_why14_one_id_twice_in_a_file_with_other_content_is_a_conflict_everywhere(self, ledger: Ledger) -> None:
        # GIVEN a JSON Lines file holding one id twice, with different content
        r = ref("incoming/twice.jsonl")
        ledger.begin(r, now=NOW)
        lines = [record("x", {"id": "x", "v": 1}, index=1), record("x", {"id": "x", "v": 2}, index=2)]
        # WHEN it is written (reject policy)
        report = ledger.write(r, lines, policy=ConflictPolicy.REJECT, now=NOW)
        # THEN the first line is kept and the second is a conflict, naming its line
        assert report.written == ("x",)
        assert report.conflicts == (("x", "incoming/twice.jsonl (line 2)"),)
        # AND the same happens when the repeat comes in a later batch of the file
        later = ledger.write(r, [record("x", {"id": "x", "v": 3}, index=3)], policy=ConflictPolicy.REJECT, now=NOW)
        assert later.conflicts == (("x", "incoming/twice.jsonl (line 3)"),)
        # AND what is kept is the first line: identical content from elsewhere is a duplicate
        other = ref("incoming/other.jsonl")
        ledger.begin(other, now=NOW)
        again = ledger.write(other, [record("x", {"id": "x", "v": 1}, index=1)], policy=ConflictPolicy.REJECT, now=NOW)
        assert again.duplicates == ("x",)

    def test_why14_one_id_twice_in_a_file_under_overwrite_keeps_the_later_line(self, ledger: Ledger) -> None:
        r = ref("incoming/twice.jsonl")
        ledger.begin(r, now=NOW)
        lines = [record("x", {"id": "x", "v": 1}, index=1), record("x", {"id": "x", "v": 2}, index=2)]
        report = ledger.write(r, lines, policy=ConflictPolicy.OVERWRITE, now=NOW)
        assert report.written == ("x", "x")
        assert report.conflicts == ()
        other = ref("incoming/other.jsonl")
        ledger.begin(other, now=NOW)
        again = ledger.write(other, [record("x", {"id": "x", "v": 2}, index=1)], policy=ConflictPolicy.REJECT, now=NOW)
        assert again.duplicates == ("x",)

    def test_one_id_twice_in_a_file_with_identical_content_is_written(self, ledger: Ledger) -> None:
        r = ref("incoming/twice.jsonl")
        ledger.begin(r, now=NOW)
        lines = [record("x", {"id": "x", "v": 1}, index=1), record("x", {"id": "x", "v": 1}, index=2)]
        report = ledger.write(r, lines, policy=ConflictPolicy.REJECT, now=NOW)
        assert report.written == ("x", "x")
        assert report.conflicts == () and report.duplicates == ()

    @pytest.mark.parametrize("first, second", [(26, 26.0), ("26", "26.00"), ("1.10", "1.1"), ("1E+2", "100")])
    def test_why14_numbers_compare_by_value(self, ledger: Ledger, first: object, second: object) -> None:
        # GIVEN two files whose only difference is how a number is written
        a, b = ref("incoming/a.json"), ref("incoming/b.json")
        one = loads(f'{{"id": "p", "p": {first}}}'.encode())
        two = loads(f'{{"id": "p", "p": {second}}}'.encode())
        ledger.begin(a, now=NOW)
        ledger.write(a, [record("p", one)], policy=ConflictPolicy.REJECT, now=NOW)
        # WHEN the second arrives
        ledger.begin(b, now=NOW)
        report = ledger.write(b, [record("p", two)], policy=ConflictPolicy.REJECT, now=NOW)
        # THEN it is the same number: a duplicate, not a conflict
        assert report.duplicates == ("p",)
        assert report.conflicts == ()

    # -- issue 8, item 4: a failed file leaves items behind ---------------------------------
    def test_why4_discard_takes_back_exactly_what_the_version_wrote(self, ledger: Ledger) -> None:
        # GIVEN a file that wrote two records, one duplicate of another file's item
        keeper = ref("incoming/keeper.jsonl")
        ledger.begin(keeper, now=NOW)
        ledger.write(keeper, [record("kept", {"id": "kept"}, index=1)], policy=ConflictPolicy.REJECT, now=NOW)
        bad = ref("incoming/bad.jsonl")
        ledger.begin(bad, now=NOW)
        written = ledger.write(
            bad,
            [
                record("b1", {"id": "b1"}, index=1),
                record("b2", {"id": "b2"}, index=2),
                record("kept", {"id": "kept"}, index=3),
            ],
            policy=ConflictPolicy.REJECT,
            now=NOW,
        )
        assert written.written == ("b1", "b2") and written.duplicates == ("kept",)
        # WHEN that file ends failed and its items are taken back
        ledger.discard(bad)
        ledger.settle(Outcome(ref=bad, status=Status.FAILED, error="line 3: bad"), now=NOW)
        # THEN a corrected upload writes them anew (no conflict with the wrong values)...
        fixed = ref("incoming/bad.jsonl", "v2")
        ledger.begin(fixed, now=NOW)
        again = ledger.write(
            fixed, [record("b1", {"id": "b1", "fixed": True}, index=1)], policy=ConflictPolicy.REJECT, now=NOW
        )
        assert again.written == ("b1",) and again.conflicts == ()
        # ...and the other file's item it merely duplicated is still there
        probe = ref("incoming/probe.jsonl")
        ledger.begin(probe, now=NOW)
        still = ledger.write(probe, [record("kept", {"id": "kept"}, index=1)], policy=ConflictPolicy.REJECT, now=NOW)
        assert still.duplicates == ("kept",)

    # -- issue 8, item 11: superseded versions ---------------------------------------------
    def test_why15_superseded_is_final_and_owes_no_notification(self, ledger: Ledger) -> None:
        r = ref("incoming/raced.json")
        assert ledger.begin(r, now=NOW) is None
        superseded = Outcome(ref=r, status=Status.SUPERSEDED, error="replaced by a newer version")
        # WHEN it settles as superseded
        owed = ledger.settle(superseded, now=NOW)
        # THEN nothing is owed, and a re-delivery finds it settled
        assert owed is False
        prior = ledger.begin(r, now=NOW)
        if prior is None:
            settled = ledger.settle(superseded, now=NOW)
            assert isinstance(settled, SettledBefore)
            assert settled.prior.status is Status.SUPERSEDED
        else:
            assert prior.status is Status.SUPERSEDED

    def test_reopen_forgets_only_a_failed_state(self, ledger: Ledger) -> None:
        failed, fine = ref("incoming/failed.json"), ref("incoming/fine.json")
        ledger.begin(failed, now=NOW)
        ledger.settle(Outcome(ref=failed, status=Status.FAILED, error="bad"), now=NOW)
        ledger.begin(fine, now=NOW)
        ledger.write(fine, [record("fine", {"id": "fine"})], policy=ConflictPolicy.REJECT, now=NOW)
        done = Outcome(ref=fine, status=Status.PROCESSED, pk="fine", records=1)
        ledger.settle(done, now=NOW)
        ledger.mark_notified(done)
        assert ledger.reopen(failed, now=NOW) is True
        assert ledger.reopen(fine, now=NOW) is False
        # AND the reopened version can settle anew
        assert ledger.begin(failed, now=NOW) is None
        assert ledger.settle(Outcome(ref=failed, status=Status.FAILED, error="still bad"), now=NOW) is True
