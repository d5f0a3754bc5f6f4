from __future__ import annotations

from typing import Any

import pytest

from dockline.aws.ledger import DynamoDBLedger
from dockline.models import ConflictPolicy
from tests.contract.ledger_contract import NOW, LedgerContract, record, ref


class TestDynamoDBLedgerChecked(LedgerContract):
    """The shared ledger contract on DynamoDB (moto), per-record writes conditional."""

    @pytest.fixture
    def ledger(self, dynamodb: Any) -> DynamoDBLedger:
        return DynamoDBLedger("events", client=dynamodb, sleep=lambda _s: None)


class TestDynamoDBLedgerBatch(LedgerContract):
    """The contract also holds with BatchWriteItem, as far as it covers one file's records."""

    @pytest.fixture
    def ledger(self, dynamodb: Any) -> DynamoDBLedger:
        return DynamoDBLedger("events", client=dynamodb, record_writes="batch", sleep=lambda _s: None)

    # BatchWriteItem cannot be conditional: across files (and across batches of one file)
    # the last writer wins, as docs/aws.md says. Within one batch the shared rule holds.
    def test_why14_one_id_twice_in_a_file_with_other_content_is_a_conflict_everywhere(self, ledger: Any) -> None:
        r = ref("incoming/twice.jsonl")
        ledger.begin(r, now=NOW)
        lines = [record("x", {"id": "x", "v": 1}, index=1), record("x", {"id": "x", "v": 2}, index=2)]
        report = ledger.write(r, lines, policy=ConflictPolicy.REJECT, now=NOW)
        assert report.written == ("x",)
        assert report.conflicts == (("x", "incoming/twice.jsonl (line 2)"),)

    def test_why14_one_id_twice_in_a_file_under_overwrite_keeps_the_later_line(self, ledger: Any) -> None:
        r = ref("incoming/twice.jsonl")
        ledger.begin(r, now=NOW)
        lines = [record("x", {"id": "x", "v": 1}, index=1), record("x", {"id": "x", "v": 2}, index=2)]
        report = ledger.write(r, lines, policy=ConflictPolicy.OVERWRITE, now=NOW)
        assert report.written == ("x", "x")

    def test_why4_discard_takes_back_exactly_what_the_version_wrote(self, ledger: Any) -> None:
        bad = ref("incoming/bad.jsonl")
        ledger.begin(bad, now=NOW)
        lines = [record("b1", {"id": "b1"}, index=1), record("b2", {"id": "b2"}, index=2)]
        assert ledger.write(bad, lines, policy=ConflictPolicy.REJECT, now=NOW).written == ("b1", "b2")
        ledger.discard(bad)
        assert ledger.client.get_item(TableName="events", Key={"pk": {"S": "b1"}}).get("Item") is None
        assert ledger.client.get_item(TableName="events", Key={"pk": {"S": "b2"}}).get("Item") is None
