from __future__ import annotations

from typing import Any

import pytest

from dockline.aws.ledger import DynamoDBLedger
from tests.contract.ledger_contract import LedgerContract


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
