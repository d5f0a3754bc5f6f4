"""A token bucket: at most ``rate`` sends per second on average, bursts of ``burst``.

``dockline backfill --rate N`` paces its messages with it, so a backlog of a million
objects does not arrive at once and the function's reserved concurrency is respected
(a throttled receive still counts towards the queue's ``maxReceiveCount``).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """Tokens refill continuously at ``rate`` per second up to ``burst``; ``acquire(n)``
    waits until ``n`` are there and takes them. Clock and sleep are injected for tests."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(burst if burst is not None else rate, 1.0)
        self._clock = clock
        self._sleep = sleep
        # Start empty, not full: the first second is paced like every other one, so
        # `--rate 5` never sends a first burst of more than the batch asked for.
        self._tokens = 0.0
        self._at = clock()

    def acquire(self, n: float = 1.0) -> None:
        """Wait until ``n`` tokens are there, then take them. ``n`` above ``burst`` is
        allowed: the bucket may fill up to ``n`` for this call, so the average holds."""
        cap = max(self.burst, n)
        while True:
            now = self._clock()
            self._tokens = min(cap, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= n - 1e-9:  # float rounding must not leave a 1e-17 s sleep forever
                self._tokens -= n
                return
            self._sleep((n - self._tokens) / self.rate)
