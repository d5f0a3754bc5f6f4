"""The reprocess replace rule on the SQLite ledger (a real file)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockline.local.db import Database
from dockline.local.ledger import SQLiteLedger
from tests.contract.reprocess_contract import Contents, ReprocessContract


class TestSQLiteReprocess(ReprocessContract):
    @pytest.fixture
    def ledger(self, tmp_path: Path) -> Iterator[SQLiteLedger]:
        # lease 0: the contract's "next run" claims the version this same ledger left unsettled
        db = Database(tmp_path / "dockline.db")
        yield SQLiteLedger(db, lease_seconds=0.0)
        db.close()

    @pytest.fixture
    def contents(self, ledger: SQLiteLedger) -> Contents:
        def read() -> dict[str, str]:
            rows = ledger.db.query("SELECT pk, payload, content_hash FROM items")
            return {
                str(r["pk"]): str(r["content_hash"] or hashlib.sha256(str(r["payload"]).encode()).hexdigest())
                for r in rows
            }

        return read
