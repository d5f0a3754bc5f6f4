"""Small helpers to find resources in a synthesized template by what they are, never by hashed ids."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

Resource = dict[str, Any]

# The statement CDK's enforce_ssl / enforceSSL writes into bucket, queue and topic policies.
TLS_ONLY_FIELDS: dict[str, Any] = {
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def resources(body: dict[str, Any], type_: str) -> dict[str, Resource]:
    return {k: v for k, v in body["Resources"].items() if v["Type"] == type_}


def only(body: dict[str, Any], type_: str, where: Callable[[Resource], bool] = lambda r: True) -> str:
    """The logical id of the one resource of ``type_`` that matches ``where``."""
    found = [k for k, v in resources(body, type_).items() if where(v)]
    assert len(found) == 1, f"expected one {type_}, found {found}"
    return found[0]


def props(resource: Resource) -> dict[str, Any]:
    return resource.get("Properties", {})


def main_bucket(body: dict[str, Any]) -> str:
    """The landing bucket: the one with a notification configuration."""
    return only(body, "AWS::S3::Bucket", lambda r: "NotificationConfiguration" in props(r))


def dead_letter_queue(body: dict[str, Any]) -> str:
    """The queue that the outputs name DeadLetterQueueUrl."""
    return body["Outputs"]["DeadLetterQueueUrl"]["Value"]["Ref"]


def input_queue(body: dict[str, Any]) -> str:
    return body["Outputs"]["QueueUrl"]["Value"]["Ref"]


def function(body: dict[str, Any]) -> str:
    return only(body, "AWS::Lambda::Function")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of every IAM policy (inline or attached) in the template."""
    for policy in resources(body, "AWS::IAM::Policy").values():
        yield from props(policy)["PolicyDocument"]["Statement"]
    for role in resources(body, "AWS::IAM::Role").values():
        for inline in props(role).get("Policies", []):
            yield from inline["PolicyDocument"]["Statement"]


def statement(body: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in role_statements(body) if s.get("Sid") == sid]
    return found


def render(value: Any) -> str:
    """A Fn::Join of literals and refs as one string, refs shown as ${Name} (for readable asserts)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(render(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return json.dumps(value, sort_keys=True)
