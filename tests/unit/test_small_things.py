"""Issue 10, item 8: the JSON Lines error names the line once; dead letters by name."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from dockline.config import PipelineSettings
from dockline.decode import RecordStream
from dockline.errors import PermanentError, UsageError
from dockline.jsonx import loads
from dockline.models import BadRecordPolicy, DeadLetter, ObjectRef
from dockline.redrive import select

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
        (b'{"id": 2, "x": ', "line 2, column 15: truncated JSON: the document ends early"),
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


def _aws_letter(message_id: str, key: str) -> DeadLetter:
    return DeadLetter(message_id, ObjectRef("bucket", key, "v1"), "failed", 3, "2026-01-01T00:00:00Z")


def test_item8_select_resolves_aws_message_id_prefixes_and_keys_the_same_way() -> None:
    # GIVEN two SQS dead letters (ids are message ids)
    a = _aws_letter("6f1c2d3e-0000-4000-8000-000000000001", "incoming/a.json")
    b = _aws_letter("6f1c9999-0000-4000-8000-000000000002", "incoming/b.json")
    # THEN a unique message-id prefix, a key and a full id each name one letter, once
    assert select([a, b], ["6f1c2"]) == [a]
    assert select([a, b], ["incoming/b.json", b.id]) == [b]
    # and a shared prefix is a usage error naming both
    with pytest.raises(UsageError, match=r"^'6f1c' names 2 dead letters: incoming/a\.json@v1, incoming/b\.json@v1;"):
        select([a, b], ["6f1c"])


def test_item8_truncation_is_placed_where_the_content_ends_not_past_the_newline() -> None:
    # GIVEN a one-line JSON document cut short, with the usual trailing newline
    # THEN the place named is on its one line, just after the last character
    with pytest.raises(PermanentError, match=r"^truncated JSON: the document ends early at line 1, column 9$"):
        loads(b'{"id": 1\n')
