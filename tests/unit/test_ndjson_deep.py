"""Issue 11, NDJSON target: a line nested deeper than orjson writes (255 levels; it parses up to
1,024) in an otherwise clean block. At 46f3795 the block fast path let orjson's ``TypeError:
Recursion limit reached`` out of the decoder: ``run --once`` said "internal error" and left the
file ``processing``. Now the block goes line by line, and that line is a bad line with the
reason the careful path always gave it."""

from __future__ import annotations

import io

import pytest

from dockline.config import PipelineSettings
from dockline.decode import RecordStream
from dockline.errors import PermanentError
from dockline.models import BadRecordPolicy


def deep_file(depth: int) -> bytes:
    deep = b'{"id":"d","v":' + b"[" * depth + b"1" + b"]" * depth + b"}"
    return b'{"id":"a"}\n' + deep + b'\n{"id":"z"}\n'


@pytest.mark.parametrize("depth", [254, 300, 1000])
def test_ndjson_deep_line_is_a_bad_line_not_an_internal_error(depth: int) -> None:
    # GIVEN a clean block with one line nested deeper than orjson can write, records skipped
    settings = PipelineSettings(on_bad_record=BadRecordPolicy.SKIP)
    stream = RecordStream(io.BytesIO(deep_file(depth)), key="in/a.ndjson", settings=settings)
    # WHEN it is decoded  THEN the other lines are records and that one a bad line, with its reason
    assert [r.pk for r in stream.records()] == ["a", "z"]
    assert [(b.index, b.reason) for b in stream.skipped] == [
        (2, "cannot serialise the document: Recursion limit reached")
    ]


def test_ndjson_deep_line_fails_the_file_in_one_line() -> None:
    # GIVEN the same file under the default policy (fail_file)
    stream = RecordStream(io.BytesIO(deep_file(300)), key="in/a.ndjson", settings=PipelineSettings())
    # WHEN it is decoded  THEN the file fails with a one-line PermanentError naming the line
    with pytest.raises(PermanentError, match=r"^line 2: cannot serialise the document: Recursion limit reached$"):
        list(stream.records())
