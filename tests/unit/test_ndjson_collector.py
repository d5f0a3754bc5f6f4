"""Issue 11, NDJSON target: the block fast path pauses the cyclic garbage collector while it
builds a block (``jsonlines._collector_paused``); the collector's state after decoding is
always the state before it, whether the file decodes, fails, or the caller had it off."""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator

import pytest

from dockline.config import PipelineSettings
from dockline.decode import RecordStream
from dockline.errors import PermanentError

CLEAN = b"".join(b'{"id":"r-%d","t":%d.5,"ok":true}\n' % (i, i) for i in range(40_000))  # ~1.3 MB: 2 blocks


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_ndjson_collector_is_on_after_a_big_clean_file(collector_on: None) -> None:
    # GIVEN a file of clean blocks (the fast path)
    stream = RecordStream(io.BytesIO(CLEAN), key="in/a.ndjson", settings=PipelineSettings())
    # WHEN it is decoded, THEN the collector is on between blocks and after them
    states = [gc.isenabled() for _ in stream.records()]
    assert len(states) == 40_000 and all(states)
    assert gc.isenabled()


def test_ndjson_collector_is_on_after_a_file_that_fails(collector_on: None) -> None:
    # GIVEN a clean block then a bad line (fail_file)
    stream = RecordStream(io.BytesIO(CLEAN + b"{bad\n"), key="in/a.ndjson", settings=PipelineSettings())
    # WHEN decoding fails  THEN the collector is on
    with pytest.raises(PermanentError, match="line 40001"):
        list(stream.records())
    assert gc.isenabled()


def test_ndjson_collector_left_off_when_the_caller_turned_it_off(collector_on: None) -> None:
    # GIVEN a caller that turned the collector off
    gc.disable()
    stream = RecordStream(io.BytesIO(CLEAN), key="in/a.ndjson", settings=PipelineSettings())
    # WHEN a file is decoded  THEN it is still off
    assert sum(1 for _ in stream.records()) == 40_000
    assert not gc.isenabled()
