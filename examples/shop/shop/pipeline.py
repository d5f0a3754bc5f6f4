"""Orders as the ledger keeps them: the total computed exactly, test orders dropped.

Prices arrive as Decimal (dockline never hands a transform a float), so 3 x 19.99 is 59.97,
not 59.970000000000006.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def normalise_order(record: dict[str, Any], ctx: Any) -> dict[str, Any] | None:
    order = record["order"]
    if order.get("test"):
        return None  # counted as dropped, never stored
    lines = order["items"]
    subtotal = sum((item["qty"] * item["price"] for item in lines), Decimal(0))
    shipping = order.get("shipping", Decimal(0))
    return {
        "order": {
            "id": order["id"],
            "customer": order["customer"].strip().lower(),
            "currency": order.get("currency", "EUR"),
            "items": lines,
            "subtotal": subtotal,
            "shipping": shipping,
            "total": subtotal + shipping,
        },
        "source": {"key": ctx.key, "line": ctx.line, "received_at": ctx.received_at},
    }
