"""The reprocess replace rule on the in-memory reference ledger."""

from __future__ import annotations

import pytest

from dockline.memory import MemoryLedger
from tests.contract.reprocess_contract import Contents, ReprocessContract


class TestMemoryReprocess(ReprocessContract):
    @pytest.fixture
    def ledger(self) -> MemoryLedger:
        return MemoryLedger()

    @pytest.fixture
    def contents(self, ledger: MemoryLedger) -> Contents:
        return lambda: {pk: item.record.content_hash for pk, item in ledger.items.items()}
