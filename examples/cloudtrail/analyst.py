"""The fields of a CloudTrail event an analyst reads, flattened; the rest is dropped.

Digest files and AWS's own service events (no identity) are not worth an item: dropped.
"""

from __future__ import annotations

from typing import Any


def keep_fields(event: dict[str, Any], ctx: Any) -> dict[str, Any] | None:
    identity = event.get("userIdentity") or {}
    if identity.get("type") == "AWSService":
        return None
    kept = {
        "eventID": event["eventID"],
        "eventTime": event["eventTime"],
        "eventSource": event["eventSource"],
        "eventName": event["eventName"],
        "awsRegion": event.get("awsRegion"),
        "sourceIPAddress": event.get("sourceIPAddress"),
        "principal": identity.get("arn") or identity.get("invokedBy"),
        "identityType": identity.get("type"),
        "readOnly": event.get("readOnly"),
        "log": ctx.key,
    }
    if "errorCode" in event:
        kept["error"] = f"{event['errorCode']}: {event.get('errorMessage', '')}".rstrip(": ")
    return kept
