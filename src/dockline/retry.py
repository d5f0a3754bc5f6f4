"""Retries with exponential backoff and full jitter, for TransientError only."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from dockline.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` counts the first try. Sleep and randomness are injectable for tests."""

    attempts: int = 4
    base_seconds: float = 0.2
    max_seconds: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rand: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(failures-1))]."""
        return self.rand() * min(self.max_seconds, self.base_seconds * 2.0 ** (failures - 1))

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; retry on TransientError; re-raise the last one when out of attempts.

        PermanentError and anything else pass straight through.
        """
        failures = 0
        while True:
            try:
                return fn()
            except TransientError:
                failures += 1
                if failures >= self.attempts:
                    raise
                self.sleep(self.delay(failures))
