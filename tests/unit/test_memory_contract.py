from __future__ import annotations

import pytest

from dockline.memory import MemoryLedger
from tests.contract.ledger_contract import LedgerContract


class TestMemoryLedger(LedgerContract):
    @pytest.fixture
    def ledger(self) -> MemoryLedger:
        return MemoryLedger()
