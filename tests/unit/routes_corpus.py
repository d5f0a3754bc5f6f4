"""One corpus with routes, shared by the parity tests of SQLite, memory and DynamoDB (issue 9)."""

from __future__ import annotations

import gzip
import json
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from dockline.config import Settings, parse_settings
from dockline.jsonx import dumps

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order"],
    "properties": {"order": {"properties": {"qty": {"type": "integer", "minimum": 1}}}},
}

CONFIG = """
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
name = "orders"
prefix = "incoming/"
suffixes = [".json", ".jsonl"]
id = ["/shop", "/order/id"]
schema = "order.json"
on_bad_record = "skip"

[[routes]]
name = "plain"
prefix = "plain/"
suffixes = [".jsonl"]

[[routes]]
name = "shop"
prefix = "shop/"
suffixes = [".jsonl"]
id = "/sku"
transform = "corpus_transforms:order_lines"
on_bad_record = "skip"
"""

# The shop route's transform (written beside dockline.toml): an order becomes one record
# per line with its total computed exactly; a test order is dropped; a broken one raises.
TRANSFORM = """
from decimal import Decimal


def order_lines(order, ctx):
    if order.get("test"):
        return None
    lines = [
        {"sku": line["sku"], "order": order["order"], "total": line["qty"] * line["price"],
         "route": ctx.route, "line": ctx.line, "exact": type(line["price"]) is Decimal}
        for line in order["lines"]
    ]
    return lines[0] if len(lines) == 1 else lines
"""

CLOUDTRAIL = (  # as text: a Python float would round the second number before dockline sees it
    b'{"Records": [{"eventID": "ev-1", "eventName": "PutObject", "n": 1.5},'
    b' {"eventID": "ev-2", "eventName": "GetObject", "n": 12345678901234567890.5}]}'
)

FILES: dict[str, bytes] = {
    "AWSLogs/111/CloudTrail/eu-west-1/ct.json.gz": gzip.compress(CLOUDTRAIL),
    "iot/2026/air.csv": b"sensor_id;temperature;humidity\n1;21.5;\n2;;40.25\n",
    "incoming/orders.jsonl": (
        b'{"shop": 7, "order": {"id": "o-1", "qty": 2}}\n'
        b'{"shop": 7, "order": {"id": "o-2", "qty": 0}}\n'  # breaks the schema: skipped
        b'{"shop": 8, "order": {"id": "o-1", "qty": 1.0}}\n'
    ),
    "plain/readings.jsonl": b'{"id": "r-1", "t": 1.25}\n{"t": 2}\n',
    "shop/orders.jsonl": (
        b'{"order": "A", "lines": [{"sku": "s-1", "qty": 3, "price": 1.10}, {"sku": "s-2", "qty": 1, "price": 0.2}]}\n'
        b'{"order": "T", "test": true, "lines": []}\n'  # dropped by the transform
        b'{"order": "B", "lines": 7}\n'  # the transform raises TypeError: a bad record, skipped
        b'{"order": "C", "lines": [{"sku": "s-3", "qty": 3, "price": 0.1}]}\n'
    ),
    "elsewhere/ignored.json": b'{"id": "nope"}',  # no route takes it
}


def _line(sku: str, order: str, total: str, line: int) -> dict[str, Any]:
    return {"sku": sku, "order": order, "total": Decimal(total), "route": "shop", "line": line, "exact": True}


# What every engine must store: pk -> (payload, route, record index).
EXPECTED: dict[str, tuple[Any, str, int | None]] = {
    "ev-1": ({"eventID": "ev-1", "eventName": "PutObject", "n": Decimal("1.5")}, "cloudtrail", 1),
    "ev-2": (
        {"eventID": "ev-2", "eventName": "GetObject", "n": Decimal("12345678901234567890.5")},
        "cloudtrail",
        2,
    ),
    "iot/2026/air.csv#2": ({"sensor_id": 1, "temperature": Decimal("21.5"), "humidity": None}, "sensors", 2),
    "iot/2026/air.csv#3": ({"sensor_id": 2, "temperature": None, "humidity": Decimal("40.25")}, "sensors", 3),
    "7#o-1": ({"shop": 7, "order": {"id": "o-1", "qty": 2}}, "orders", 1),
    "8#o-1": ({"shop": 8, "order": {"id": "o-1", "qty": 1}}, "orders", 3),
    "r-1": ({"id": "r-1", "t": Decimal("1.25")}, "plain", 1),
    "plain/readings.jsonl#2": ({"t": 2}, "plain", 2),
    # 3 x 1.10 is 3.30 exactly (a float would give 3.3000000000000003); 3 x 0.1 is 0.3
    "s-1": (_line("s-1", "A", "3.30", 1), "shop", 1),
    "s-2": (_line("s-2", "A", "0.2", 1), "shop", 1),
    "s-3": (_line("s-3", "C", "0.3", 4), "shop", 4),
}
# Every engine reports the same for the shop file: 3 written, 1 dropped, 1 bad record.
SHOP_KEY = "shop/orders.jsonl"
SHOP_SKIPPED = "transform corpus_transforms:order_lines raised TypeError: 'int' object is not iterable"


def settings(folder: Path) -> Settings:
    (folder / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    (folder / "corpus_transforms.py").write_text(TRANSFORM)
    return parse_settings(tomllib.loads(CONFIG), source=folder / "dockline.toml")


def comparable(payload: Any, route: Any, index: Any) -> tuple[str, str, int | None]:
    """An item as the three engines can agree on it: its canonical JSON (exact numbers,
    26.0 written 26, as the ledgers compare content), its route and its place."""
    return dumps(payload).decode(), str(route), None if index is None else int(index)


def expected() -> dict[str, tuple[str, str, int | None]]:
    return {pk: comparable(*value) for pk, value in EXPECTED.items()}
