"""A port's boto3 client, made on first use: the one it was given, its factory's, or boto3's
default for the service (boto3 is imported only then: the local engine never loads it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

Client = TypeVar("Client")


def made_client(given: Client | None, factory: Callable[[], Client] | None, service: str) -> Client:
    """``given`` if there is one, else ``factory()``, else ``boto3.client(service)``."""
    if given is not None:
        return given
    if factory is not None:
        return factory()
    import boto3

    return cast(Client, boto3.client(service))  # type: ignore[call-overload]
