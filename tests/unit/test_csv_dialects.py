"""Issue 9 item 1: CSV dialects (delimiter, quotechar, encoding), blank typed cells, a
misread delimiter named."""

from __future__ import annotations

import io
import tomllib
from decimal import Decimal
from typing import Any

import pytest

from dockline.config import PipelineSettings, parse_settings
from dockline.decode import RecordStream
from dockline.errors import PermanentError


def sensors(csv: str = "", schema: str = "", pipeline: str = "") -> PipelineSettings:
    text = f'{pipeline}\n[[routes]]\nname = "sensors"\nprefix = "iot/"\nsuffixes = [".csv"]\n'
    if csv:
        text += f"csv = {{ {csv} }}\n"
    if schema:
        text += f"csv_schema = {{ {schema} }}\n"
    return parse_settings(tomllib.loads(text)).pipeline


def rows(data: bytes, p: PipelineSettings) -> list[Any]:
    return [r.payload for r in RecordStream(io.BytesIO(data), key="iot/a.csv", settings=p).records()]


def test_csv_semicolon_delimiter_and_decimal_types() -> None:
    p = sensors('delimiter = ";"', 'temperature = "decimal", sensor_id = "int"')
    data = b"sensor_id;sensor_type;temperature\n1;PM10;21.50\n2;NO2;-3\n"
    assert rows(data, p) == [
        {"sensor_id": 1, "sensor_type": "PM10", "temperature": Decimal("21.50")},
        {"sensor_id": 2, "sensor_type": "NO2", "temperature": Decimal("-3")},
    ]


def test_csv_quotechar_and_tab_delimiter() -> None:
    p = sensors('delimiter = "\\t", quotechar = "\'"')
    assert rows(b"name\tnote\n'a\tb'\t'it''s'\n", p) == [{"name": "a\tb", "note": "it's"}]


@pytest.mark.parametrize(
    ("encoding", "data", "expected"),
    [
        ("latin-1", "city\nZürich\n".encode("latin-1"), "Zürich"),
        ("utf-8-sig", "\ufeffcity\nZürich\n".encode(), "Zürich"),
        ("utf-8", "city\nZürich\n".encode(), "Zürich"),
    ],
)
def test_csv_encodings(encoding: str, data: bytes, expected: str) -> None:
    assert rows(data, sensors(f'encoding = "{encoding}"')) == [{"city": expected}]


def test_csv_latin1_file_read_as_utf8_is_a_clear_failure() -> None:
    with pytest.raises(PermanentError, match="not valid UTF-8"):
        rows("city\nZürich\n".encode("latin-1"), sensors())


def test_csv_typed_blank_cell_is_null_and_a_bad_number_still_fails() -> None:
    # GIVEN typed columns with blank cells (a sensor that did not report)
    p = sensors(schema='temperature = "decimal", humidity = "decimal", sensor_id = "int", ok = "bool"')
    data = b"sensor_id,temperature,humidity,ok,note\n1,,40.5, ,\n2,20.1,,true,x\n"
    # THEN blank typed cells are null; an untyped blank stays an empty string
    assert rows(data, p) == [
        {"sensor_id": 1, "temperature": None, "humidity": Decimal("40.5"), "ok": None, "note": ""},
        {"sensor_id": 2, "temperature": Decimal("20.1"), "humidity": None, "ok": True, "note": "x"},
    ]
    with pytest.raises(PermanentError, match="line 2: 'warm' is not a number"):
        rows(b"temperature\nwarm\n", p)


def test_csv_pipeline_csv_schema_blank_cell_is_null_too() -> None:
    # The default route ([pipeline] csv_schema) has the same rule: one blank price no longer fails a file.
    p = parse_settings(tomllib.loads('[pipeline]\ncsv_schema = { price = "decimal" }')).pipeline
    stream = RecordStream(io.BytesIO(b"id,price\na,\nb,2.50\n"), key="incoming/a.csv", settings=p)
    assert [r.payload for r in stream.records()] == [{"id": "a", "price": None}, {"id": "b", "price": Decimal("2.50")}]


@pytest.mark.parametrize(
    ("data", "likely"),
    [
        (b"sensor_id;sensor_type;temperature\n1;PM10;21.5\n2;NO2;19\n", "';' (3 columns)"),
        (b"a\tb\n1\t2\n", "a tab (2 columns)"),
        (b"a|b|c|d\n1|2|3|4\n", "'|' (4 columns)"),
    ],
)
def test_csv_one_column_header_with_another_delimiter_is_a_bad_file_naming_it(data: bytes, likely: str) -> None:
    # GIVEN a comma route fed a file separated otherwise (issue: 304 one-column records, no warning)
    with pytest.raises(PermanentError) as caught:
        rows(data, sensors())
    # THEN the file fails naming the likely delimiter, and nothing is stored
    assert f"look separated by {likely}" in str(caught.value)
    assert "set csv = { delimiter" in str(caught.value)


def test_csv_one_column_file_that_is_really_one_column_is_fine() -> None:
    # A header with a ';' whose rows do not split alike is a real one-column file.
    assert rows(b"note;x\nhello\nworld\n", sensors()) == [{"note;x": "hello"}, {"note;x": "world"}]
    assert rows(b"name\nalice\n", sensors()) == [{"name": "alice"}]


def test_csv_semicolon_file_is_refused_on_the_default_route_too() -> None:
    with pytest.raises(PermanentError, match="look separated by ';'"):
        list(RecordStream(io.BytesIO(b"a;b\n1;2\n"), key="incoming/a.csv", settings=PipelineSettings()).records())
