from __future__ import annotations

import gzip
import io
from dataclasses import replace
from decimal import Decimal

import pytest

from dockline.config import PipelineSettings
from dockline.decode import RecordStream, derive_pk, format_of
from dockline.errors import PermanentError
from dockline.jsonx import exact_payload
from dockline.models import BadRecordPolicy, RecordMode

SETTINGS = PipelineSettings()


def decode(data: bytes, key: str = "incoming/a.json", settings: PipelineSettings = SETTINGS) -> RecordStream:
    stream = RecordStream(io.BytesIO(data), key=key, settings=settings)
    stream.collected = list(stream.records())  # type: ignore[attr-defined]
    return stream


@pytest.mark.parametrize(
    ("document", "pk"),
    [
        ({"id": "order-1"}, "order-1"),
        ({"id": 17}, "17"),
        ({"id": -3}, "-3"),
        ({"no": "id"}, "incoming/a b.json"),
    ],
)
def test_pk_is_the_id_or_the_decoded_key(document: dict[str, object], pk: str) -> None:
    assert derive_pk(document, "incoming/a b.json") == pk


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "not bool"),
        (1.5, "not a decimal number"),
        (Decimal("1.5"), "not a decimal number"),
        (None, "not null"),
        ({"a": 1}, "not an object"),
        ([1], "not an array"),
        ("", "id is empty"),
        ("   ", "id is empty"),
        ("x" * 1025, "id is 1,025 bytes long; the limit is 1,024 bytes"),
        ("dockline#file", "reserved"),
    ],
)
def test_invalid_ids_fail_with_a_clear_reason(value: object, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason):
        derive_pk({"id": value}, "k")


def test_a_1024_byte_id_is_fine() -> None:
    assert derive_pk({"id": "é" * 512}, "k") == "é" * 512


def test_format_by_suffix() -> None:
    assert format_of("a.json") == ("json", False)
    assert format_of("a.ndjson.gz") == ("lines", True)
    assert format_of("a.jsonl") == ("lines", False)
    assert format_of("a.csv.gz") == ("csv", True)


def test_document_mode_gives_one_record_with_hash_and_size() -> None:
    stream = decode(b'{"id": "a", "price": 19.99}')
    [record] = stream.collected  # type: ignore[attr-defined]
    assert record.pk == "a" and exact_payload(record.payload) == {"id": "a", "price": Decimal("19.99")}
    assert record.canonical == '{"id":"a","price":19.99}'
    assert len(stream.sha256) == 64 and stream.size == 27
    assert not stream.multi


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"  \n\t ", "blank"),
        (b"[1, 2]", 'is an array, not a JSON object (set records = "split"'),
        (b'"text"', "is a string, not a JSON object"),
        (b"42", "is a number, not a JSON object"),
        (b"null", "is null, not a JSON object"),
    ],
)
def test_documents_that_are_not_objects_fail(data: bytes, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason.replace("(", r"\(")):
        decode(data)


def test_oversized_document_becomes_a_reference() -> None:
    settings = replace(SETTINGS, max_inline_bytes=1000)
    [record] = decode(b'{"id": "big", "blob": "' + b"x" * 5000 + b'"}', settings=settings).collected  # type: ignore[attr-defined]
    assert record.oversized and record.payload is None and record.payload_bytes > 5000
    assert len(record.content_hash) == 64


def test_max_object_bytes_stops_reading_early() -> None:
    settings = replace(SETTINGS, max_object_bytes=1000)

    class Endless(io.RawIOBase):
        served = 0

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            buffer[: len(buffer)] = b" " * len(buffer)
            Endless.served += len(buffer)
            return len(buffer)

    with pytest.raises(PermanentError, match="larger than the maximum of 1,000 bytes"):
        list(RecordStream(Endless(), key="incoming/a.json", settings=settings).records())  # type: ignore[arg-type]
    assert Endless.served < 1_000_000


def test_ndjson_gives_one_record_per_line_with_line_pks() -> None:
    data = b'{"id": "a", "t": 1.5}\n\n{"t": 2}\n'
    records = decode(data, key="incoming/r.ndjson").collected  # type: ignore[attr-defined]
    assert [(r.pk, r.index) for r in records] == [("a", 1), ("incoming/r.ndjson#3", 3)]


def test_bad_line_fails_the_file_by_default_and_is_listed_with_skip() -> None:
    data = b'{"id": "a"}\n{"id": \n{"id": "c"}\n'
    with pytest.raises(PermanentError, match=r"line 2, column \d+: truncated JSON"):
        decode(data, key="incoming/r.jsonl")
    skip = replace(SETTINGS, on_bad_record=BadRecordPolicy.SKIP)
    stream = decode(data, key="incoming/r.jsonl", settings=skip)
    assert [r.pk for r in stream.collected] == ["a", "c"]  # type: ignore[attr-defined]
    assert [(b.index, b.reason.split(":")[0]) for b in stream.skipped] == [(2, "truncated JSON")]


def test_gzip_ndjson_and_gzip_bomb() -> None:
    lines = b"".join(b'{"id": "%d"}\n' % i for i in range(100))
    records = decode(gzip.compress(lines), key="incoming/r.ndjson.gz").collected  # type: ignore[attr-defined]
    assert len(records) == 100
    bomb = gzip.compress(b" " * 5_000_000)  # ~5 KB that inflates 1000x
    settings = replace(SETTINGS, max_object_bytes=1_000_000)
    with pytest.raises(PermanentError, match="decompressed content is larger than the maximum"):
        decode(bomb, key="incoming/b.json.gz", settings=settings)
    with pytest.raises(PermanentError, match="not a valid gzip file"):
        decode(b"not gzip at all", key="incoming/b.json.gz")


def test_csv_rows_with_schema_and_bad_row() -> None:
    data = b"id,qty,price,paid\nA,2,19.99,true\nB,x,1,false\nC,1,2\n"
    settings = replace(
        SETTINGS, csv_schema={"qty": "int", "price": "decimal", "paid": "bool"}, on_bad_record=BadRecordPolicy.SKIP
    )
    stream = decode(data, key="incoming/o.csv", settings=settings)
    [a] = stream.collected  # type: ignore[attr-defined]
    assert exact_payload(a.payload) == {"id": "A", "qty": 2, "price": Decimal("19.99"), "paid": True}
    assert [b.index for b in stream.skipped] == [3, 4]
    assert "'x' is not an integer" in stream.skipped[0].reason
    plain = decode(b"id,v\n1,2.5\n", key="incoming/o.csv").collected  # type: ignore[attr-defined]
    assert plain[0].payload == {"id": "1", "v": "2.5"} and plain[0].pk == "1"


def test_split_mode_gives_one_record_per_array_element() -> None:
    settings = replace(SETTINGS, records=RecordMode.SPLIT)
    records = decode(b'[{"id": "a"}, {"v": 1}]', settings=settings).collected  # type: ignore[attr-defined]
    assert [r.pk for r in records] == ["a", "incoming/a.json#2"]


def test_csv_schema_types_are_checked_when_the_config_is_read() -> None:
    from dockline.config import parse_settings
    from dockline.errors import ConfigError

    with pytest.raises(ConfigError, match="column 'qty' has type 'float'"):
        parse_settings({"pipeline": {"csv_schema": {"qty": "float"}}})


def test_why14_a_json_lines_block_writes_integral_floats_as_integers() -> None:
    # GIVEN a block of lines taking orjson's fast path, a few with integral floats
    lines = [
        f'{{"id": "r{i}", "t": {i}.0, "u": 0.05, "s": "v1.0,"}}' if i % 50 == 0 else f'{{"id": "r{i}", "t": {i}.5}}'
        for i in range(1, 301)
    ]
    data = ("\n".join(lines) + "\n").encode()
    # WHEN it is decoded
    records = list(RecordStream(io.BytesIO(data), key="incoming/b.jsonl", settings=PipelineSettings()).records())
    # THEN 50.0 is written 50 (a string's ".0," untouched), the rest unchanged
    by_pk = {r.pk: r.canonical for r in records}
    assert by_pk["r50"] == '{"id":"r50","s":"v1.0,","t":50,"u":0.05}'
    assert by_pk["r51"] == '{"id":"r51","t":51.5}'
    assert all(".0," not in c.replace('"v1.0,"', "") for c in by_pk.values())
