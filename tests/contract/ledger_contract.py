"""One contract for every Ledger backend (memory, SQLite, DynamoDB on moto).

A backend's test module subclasses ``LedgerContract`` and overrides the ``ledger``
fixture. Every test goes through the public port only.
"""

from __future__ import annotations

import hashlib

import pytest

from dockline.jsonx import dumps
from dockline.models import ConflictPolicy, ObjectRef, Outcome, Record, Status
from dockline.ports import Ledger

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
            assert ledger.settle(outcome, now=NOW) is False
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
            assert ledger.settle(failed, now=NOW) is False
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
