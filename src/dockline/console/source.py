"""Where the console's data comes from: one data dir, opened per request.

A read opens the database read-only for that request only and closes it after, so the
console never holds a lock, never waits for ``dockline run`` and always sees what it has
committed. A button opens a writing engine for its action only; actions take turns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dockline.config import Settings
from dockline.errors import UsageError

if TYPE_CHECKING:
    from dockline.local.engine import LocalEngine


class NoData(UsageError):
    """The data dir has no database yet (nothing was put or run there)."""


@dataclass
class DataSource:
    data_dir: Path
    settings: Settings
    _action_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def reading(self) -> Iterator[LocalEngine]:
        """A read-only engine for one request. Raises NoData, DocklineError (one line)."""
        from dockline.local.engine import LocalEngine

        self._require_data()
        engine = LocalEngine(self.data_dir, self.settings, read_only=True)
        try:
            yield engine
        finally:
            # Connections are per thread: closed in the thread that opened them.
            engine.db.close()

    @contextmanager
    def writing(self) -> Iterator[LocalEngine]:
        """A writing engine for one action; one action at a time. Raises NoData, DocklineError."""
        from dockline.local.engine import LocalEngine

        self._require_data()
        with self._action_lock:
            engine = LocalEngine(self.data_dir, self.settings)
            try:
                yield engine
            finally:
                engine.deliveries.close()
                engine.db.close()

    def _require_data(self) -> None:
        if not (self.data_dir / "dockline.db").exists():
            raise NoData(f"no dockline data in {self.data_dir} yet (`dockline put` / `dockline run` first)")
