"""The token bucket behind `backfill --rate` (a fake clock: no timing in the test)."""

from __future__ import annotations

import pytest

from dockline.aws.pacing import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("rate", "burst", "batches", "size"), [(10, 10, 10, 10), (2, 2, 5, 2), (20, 10, 7, 10), (3, 1, 4, 5)]
)
def test_rate_bounds_the_average_whatever_the_batch(rate: float, burst: float, batches: int, size: int) -> None:
    # GIVEN a bucket of `rate` per second
    time = FakeTime()
    bucket = TokenBucket(rate, burst=burst, clock=time.clock, sleep=time.sleep)
    # WHEN `batches` batches of `size` are taken
    for _ in range(batches):
        bucket.acquire(size)
    # THEN they took at least (and about) count / rate seconds: never faster than the rate
    expected = batches * size / rate
    assert expected - 1e-9 <= time.now <= expected + size / rate


def test_a_quiet_spell_does_not_bank_more_than_a_burst() -> None:
    time = FakeTime()
    bucket = TokenBucket(5, burst=5, clock=time.clock, sleep=time.sleep)
    time.now = 100.0  # nothing sent for 100 s
    for _ in range(3):
        bucket.acquire(5)
    # the first 5 go at once; the next 10 wait 2 s: not 500 tokens banked
    assert time.now == pytest.approx(102.0)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)
