"""The three examples under examples/ and what every engine must make of their samples
(issue 9 item 8): shared by the local test (`dockline try` and `run --once` in real
processes) and the AWS engine's (moto)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = ("cloudtrail", "shop", "air-quality")


def samples(name: str) -> dict[str, bytes]:
    """key -> bytes of each sample file (its path below samples/ is its key)."""
    root = EXAMPLES / name / "samples"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# pk -> the fields of the stored payload that must be exactly so
ITEMS: dict[str, dict[str, dict[str, Any]]] = {
    "cloudtrail": {
        "3f1c2e0a-0001-4a8e-9d6f-000000000001": {
            "eventName": "PutObject",
            "principal": "arn:aws:iam::123456789012:user/alice",
            "sourceIPAddress": "198.51.100.7",
        },
        "3f1c2e0a-0002-4a8e-9d6f-000000000002": {
            "eventName": "AttachRolePolicy",
            "error": "AccessDenied: User is not authorized to perform: iam:AttachRolePolicy",
            "identityType": "AssumedRole",
        },
    },
    "shop": {
        # 3 x 19.99 + 0.10 = 60.07 and + 4.90 shipping = 64.97, exactly
        "o-1001": {"subtotal": Decimal("60.07"), "total": Decimal("64.97"), "customer": "alice@example.com"},
        "o-1002": {"subtotal": Decimal("49"), "total": Decimal("49"), "currency": "EUR"},
    },
    "air-quality": {
        "101#2026-12-01T09:00:00Z": {"pm25": Decimal("12.4"), "temperature": Decimal("4.5"), "calibrated": True},
        "101#2026-12-01T09:10:00Z": {"pm10": None, "humidity": Decimal("80.5")},
        "102#2026-12-01T09:00:00Z": {"pm25": None, "pm10": None, "humidity": None, "calibrated": False},
        "103#2026-12-01T09:00:00Z": {"pm25": Decimal("35.75"), "temperature": Decimal("-1.25")},
    },
}
# (records written, dropped by the transform, bad records skipped) per example
COUNTS = {"cloudtrail": (2, 1, 0), "shop": (2, 1, 1), "air-quality": (4, 0, 0)}


def checked(name: str, items: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """pk -> the checked fields of each stored payload (the shop keeps them under "order")."""
    found = {}
    for pk, payload in items.items():
        body = payload["order"] if name == "shop" else payload
        found[pk] = {field: body.get(field) for field in ITEMS[name].get(pk, {})}
    return found
