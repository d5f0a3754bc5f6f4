from __future__ import annotations

from pathlib import Path

import pytest

from dockline.local.db import Database
from dockline.local.ledger import SQLiteLedger
from tests.contract.ledger_contract import LedgerContract


class TestSQLiteLedger(LedgerContract):
    @pytest.fixture
    def ledger(self, tmp_path: Path) -> SQLiteLedger:
        return SQLiteLedger(Database(tmp_path / "dockline.db"))
