"""Issue 9 item 1: [[routes]] in dockline.toml, the first matching route takes a key."""

from __future__ import annotations

import io
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dockline.config import load_settings, parse_settings
from dockline.decode import RecordStream
from dockline.errors import ConfigError
from dockline.models import BadRecordPolicy, ConflictPolicy, RecordMode
from dockline.routes import DEFAULT_ROUTE, Format

ROUTES = """
[pipeline]
on_bad_record = "skip"

[[routes]]
name = "cloudtrail"
prefix = "AWSLogs/"
suffixes = [".json.gz"]
records = "/Records"
id = "/eventID"

[[routes]]
name = "sensors"
prefix = "iot/"
suffixes = [".csv"]
csv = { delimiter = ";" }
csv_schema = { temperature = "decimal", humidity = "decimal", sensor_id = "int" }

[[routes]]
name = "vpc"
prefix = "AWSLogs/"
suffixes = [".log"]
format = "jsonl"
on_conflict = "overwrite"

[[routes]]
name = "orders"
prefix = "incoming/"
suffixes = [".json", ".jsonl"]
id = "/order/id"
"""


def settings(text: str, base: Path | None = None) -> Any:
    return parse_settings(tomllib.loads(text), source=(base / "dockline.toml") if base else None)


def test_route_the_first_matching_route_takes_a_key() -> None:
    # GIVEN the routes
    table = settings(ROUTES).pipeline.table
    # WHEN keys of each feed arrive, THEN each goes to its route; others to none
    assert table.route_for("AWSLogs/1/CloudTrail/eu/x.json.gz").name == "cloudtrail"
    assert table.route_for("iot/a.csv.gz").name == "sensors"  # .gz always recognised
    assert table.route_for("AWSLogs/1/vpc/x.log.gz").name == "vpc"
    assert table.route_for("incoming/o.jsonl").name == "orders"
    assert table.route_for("AWSLogs/1/x.csv") is None
    assert table.route_for("IOT/a.csv") is None  # case-sensitive, as S3


def test_route_fields_default_from_pipeline_and_format_from_suffix() -> None:
    routes = {r.name: r for r in settings(ROUTES).pipeline.routes}
    assert routes["sensors"].on_bad_record is BadRecordPolicy.SKIP  # from [pipeline]
    assert routes["vpc"].on_conflict is ConflictPolicy.OVERWRITE
    assert routes["vpc"].format is Format.JSONL
    assert routes["vpc"].format_for("AWSLogs/x.log.gz") == ("lines", True)
    assert routes["orders"].format_for("incoming/a.jsonl") == ("lines", False)
    assert routes["orders"].format_for("incoming/a.json") == ("json", False)
    assert routes["cloudtrail"].records is RecordMode.SPLIT
    assert routes["cloudtrail"].selector is not None and routes["cloudtrail"].selector.tokens == ("Records",)


def test_route_pipeline_alone_is_the_default_route() -> None:
    # GIVEN an old configuration without [[routes]]
    p = settings('[pipeline]\nprefix = "drop/"\nsuffixes = [".json"]\nrecords = "split"').pipeline
    # THEN it is one route, named "default", with the section's rules
    (route,) = p.table.routes
    assert (route.name, route.prefix, route.records) == (DEFAULT_ROUTE, "drop/", RecordMode.SPLIT)
    assert p.matches("drop/a.json.gz") and not p.matches("drop/a.csv") and not p.matches("incoming/a.json")


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ('[[routes]]\nname = "x"\nprefix = "a/"\ncolour = "red"', ("'x'", "unknown field 'colour'")),
        ('[[routes]]\nprefix = "a/"', ("#1", "name")),
        ('[[routes]]\nname = "x"', ("'x'", "prefix")),
        ('[[routes]]\nname = "x"\nprefix = "a/"\nid = "order/id"', ("'x'", "id", 'must start with "/"')),
        ('[[routes]]\nname = "x"\nprefix = "a/"\nid = "/a~2b"', ("'x'", "id", "~0")),
        ('[[routes]]\nname = "x"\nprefix = "a/"\nrecords = "Records"', ("'x'", "records", "JSON Pointer")),
        ('[[routes]]\nname = "x"\nprefix = "a/"\nsuffixes = [".csv"]\nrecords = "/R"', ("'x'", "records", "json")),
        ('[[routes]]\nname = "x"\nprefix = "a/"\nsuffixes = [".log"]', ("'x'", "suffixes", "'.log'", "format")),
        ('[[routes]]\nname = "x"\nprefix = "/abs/"', ("'x'", "prefix", "never match")),
        ('[[routes]]\nname = "x"\nprefix = "a/"\nschema = "nope.json"', ("'x'", "schema", "does not exist")),
        # transforms arrived (issue 9 item 3): an unimportable one is now the error, not the field
        ('[[routes]]\nname = "x"\nprefix = "a/"\ntransform = "no_such_mod_9:f"', ("'x'", "transform", "cannot import")),
        ('[[routes]]\nname = "x"\nprefix = "a/"\nformat = "xml"', ("'x'", "format", "'xml'")),
        ('[[routes]]\nname = "x"\nprefix = "a/"\ncsv = { delimiter = ";;" }', ("'x'", "csv delimiter")),
        ('[[routes]]\nname = "x"\nprefix = "a/"\ncsv = { encoding = "utf-16" }', ("'x'", "csv encoding")),
        ('[[routes]]\nname = "x"\nprefix = "a/"\nsuffixes = [".json"]\ncsv = { delimiter = ";" }', ("'x'", "csv")),
        (
            '[[routes]]\nname = "x"\nprefix = "a/"\n[[routes]]\nname = "x"\nprefix = "b/"',
            ("'x'", "name", "two routes"),
        ),
    ],
)
def test_route_config_errors_are_one_line_naming_route_and_field(extra: str, words: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(extra)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('prefix = "a/"\nsuffixes = [".json"]', 'prefix = "a/b/"\nsuffixes = [".json"]'),  # longer prefix, same suffix
        ('prefix = ""\nsuffixes = [".json", ".csv"]', 'prefix = "x/"\nsuffixes = [".csv"]'),
        ('prefix = "a/"\nsuffixes = [".json"]', 'prefix = "a/"\nsuffixes = [".json"]'),  # identical
    ],
)
def test_route_fully_shadowed_by_an_earlier_one_is_an_error(first: str, second: str) -> None:
    text = f'[[routes]]\nname = "first"\n{first}\n[[routes]]\nname = "second"\n{second}\n'
    with pytest.raises(ConfigError, match=r"'second' prefix/suffixes can never match: route 'first' comes first"):
        settings(text)


def test_route_partly_overlapping_routes_are_fine_in_order() -> None:
    # A narrower route first, the wider one after: both can match some key.
    text = (
        '[[routes]]\nname = "narrow"\nprefix = "a/b/"\nsuffixes = [".json"]\n'
        '[[routes]]\nname = "wide"\nprefix = "a/"\nsuffixes = [".json"]\n'
    )
    table = settings(text).pipeline.table
    assert table.route_for("a/b/x.json").name == "narrow"
    assert table.route_for("a/x.json").name == "wide"


def test_route_schema_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "order.json").write_text('{"type": "object", "required": ["order"]}')
    config = tmp_path / "dockline.toml"
    config.write_text('[[routes]]\nname = "orders"\nprefix = "in/"\nschema = "schemas/order.json"\n')
    route = load_settings(config).pipeline.routes[0]
    assert route.schema is not None and route.schema.problem({"x": 1}) == "(root): 'order' is a required property"


def test_route_decoding_follows_the_route_of_the_key() -> None:
    # GIVEN the sensors route (semicolons) and the orders route (nested ids)
    p = settings(ROUTES).pipeline
    csv_data = b"sensor_id;temperature\n7;21.5\n"
    rows = list(RecordStream(io.BytesIO(csv_data), key="iot/a.csv", settings=p).records())
    assert [(r.pk, r.payload) for r in rows] == [("iot/a.csv#2", {"sensor_id": 7, "temperature": Decimal("21.5")})]
    order = b'{"order": {"id": "o-1"}}'
    (record,) = RecordStream(io.BytesIO(order), key="incoming/o.json", settings=p).records()
    assert record.pk == "o-1"
    # a key no route takes is decoded by [pipeline]'s rules (a redrive after a change)
    (record,) = RecordStream(io.BytesIO(order), key="elsewhere/x.json", settings=p).records()
    assert record.pk == "elsewhere/x.json"
    assert RecordStream(io.BytesIO(order), key="elsewhere/x.json", settings=p).route.name == DEFAULT_ROUTE


def test_route_readme_example_parses(tmp_path: Path) -> None:
    # GIVEN the README's routes example, with its schema file in place
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = next(b for b in readme.split("```toml\n")[1:] if b.lstrip().startswith("[[routes]]"))
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "order.json").write_text('{"type": "object"}')
    config = tmp_path / "dockline.toml"
    config.write_text(block.split("```")[0])
    # THEN it loads, in order, and routes keys as the README says
    table = load_settings(config).pipeline.table
    assert [r.name for r in table.routes] == ["cloudtrail", "sensors", "vpc", "orders"]
    assert table.route_for("AWSLogs/1/x.log.gz").name == "vpc"  # type: ignore[union-attr]
    assert table.route_for("AWSLogs/1/x.json.gz").name == "cloudtrail"  # type: ignore[union-attr]
