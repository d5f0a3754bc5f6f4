"""Issue 10, item 8: the JSON Lines error names the line once."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from dockline.config import PipelineSettings
from dockline.decode import RecordStream
from dockline.errors import PermanentError
from dockline.jsonx import loads
from dockline.models import BadRecordPolicy

SETTINGS = PipelineSettings()


def _records(data: bytes, key: str, settings: PipelineSettings = SETTINGS) -> RecordStream:
    stream = RecordStream(io.BytesIO(data), key=key, settings=settings)
    list(stream.records())
    return stream


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"id": 2, "x": 1 2}', "line 2, column 18: not valid JSON: Expecting ',' delimiter"),
        (b'{"id": 2} {"id": 3}', "line 2, column 11: trailing data after the JSON document"),
        (b'{"id": 2, "x": ', "line 2, column 16: truncated JSON: the document ends early"),
    ],
)
def test_item8_jsonl_error_names_the_line_once(line: bytes, expected: str) -> None:
    # GIVEN a JSON Lines file whose second line is bad
    data = b'{"id": 1}\n' + line + b'\n{"id": 3}\n'
    # WHEN it is decoded (the default policy fails the file)
    with pytest.raises(PermanentError) as caught:
        _records(data, "incoming/r.ndjson")
    # THEN the reason names the file's line and column once, never the parser's "line 1"
    assert str(caught.value) == expected
    assert "line 1" not in str(caught.value)


def test_item8_skipped_jsonl_line_keeps_its_column_but_not_a_second_line() -> None:
    # GIVEN the skip policy and a bad second line
    settings = replace(SETTINGS, on_bad_record=BadRecordPolicy.SKIP)
    stream = _records(b'{"id": 1}\n{"id": 2, "x": 1 2}\n', "incoming/r.ndjson", settings)
    # THEN the skipped line's reason has its column, and no other line number
    [bad] = stream.skipped
    assert (bad.index, bad.reason) == (2, "not valid JSON: Expecting ',' delimiter at column 18")


def test_item8_a_whole_json_document_still_says_where() -> None:
    # GIVEN a multi-line JSON document with an error on its third line
    # THEN the one place in it is still named (line and column of the document)
    with pytest.raises(PermanentError, match=r"^not valid JSON: Expecting ',' delimiter at line 3, column 9$"):
        loads(b'{\n "a": 1,\n "b": 2 3\n}')
