"""Calls to the ledger's one DynamoDB table, shared by the file lifecycle (``aws/ledger.py``)
and the item writes (``aws/item_writes.py``): the client, built lazily and once; each
call's errors translated into dockline's (``errors.translate``), a refused condition and a
cancelled transaction into the two exceptions below, which the callers judge; consistent
reads; and the jittered backoff between rounds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from dockline.aws import items as it
from dockline.aws.clients import made_client
from dockline.aws.errors import error_code, error_message, is_retryable, translate
from dockline.errors import PermanentError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_ROUNDS = 8  # conditional retries / unprocessed-item retries before giving up for now


class Table:
    """One DynamoDB table. Thread-safe once its client is built (boto3 clients are)."""

    def __init__(
        self,
        name: str,
        *,
        client: DynamoDBClient | None,
        client_factory: Callable[[], DynamoDBClient] | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.name = name
        self._client = client
        self._factory = client_factory
        self._sleep = sleep

    @property
    def client(self) -> DynamoDBClient:
        self._client = made_client(self._client, self._factory, "dynamodb")
        return self._client

    def get(self, pk: str) -> dict[str, Any] | None:
        """The item under ``pk`` (a consistent read), or None. Raises TransientError."""
        response = self.call(
            "reading the ledger",
            self.client.get_item,
            TableName=self.name,
            Key={"pk": it.s(pk)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return dict(item) if item else None

    def backoff(self, attempt: int) -> None:
        self._sleep(random.random() * min(2.0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not crypto

    def call(self, action: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        """Call one DynamoDB operation, translating its errors (see errors.translate).

        Raises ConditionFailed, Cancelled, PermanentError (an item DynamoDB can never take),
        TransientError and the other DocklineErrors ``translate`` gives.
        """
        try:
            return method(**kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                old = exc.response.get("Item")
                raise ConditionFailed(old if isinstance(old, dict) else None) from exc
            if code == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons", [])
                raise Cancelled(list(reasons)) from exc
            if code == "ValidationException" and not is_retryable(exc):
                raise PermanentError(f"DynamoDB refused the item: {error_message(exc)}") from exc
            raise translate(exc, f"{action} (DynamoDB table {self.name})") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"{action} (DynamoDB table {self.name})") from exc


class ConditionFailed(Exception):
    """A conditional write was refused; ``item``: the item in the way (ALL_OLD), if returned."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("conditional check failed")
        self.item = item


class Cancelled(Exception):
    """A TransactWriteItems was cancelled; ``reasons``: one per action, in order."""

    def __init__(self, reasons: list[Mapping[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons
