"""botocore errors -> dockline's error family, in one place for every AWS adapter.

The rule: what is worth retrying (throttling, 5xx, timeouts, dropped connections)
becomes ``TransientError``; anything else becomes a plain ``DocklineError``. Each
adapter decides which of the remaining codes mean bad input (``PermanentError``),
because only it knows: an AccessDenied on GetObject fails a file, an AccessDenied on
Publish is a deployment problem that must not fail the file.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectionError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from dockline.errors import DocklineError, TransientError

# Error codes AWS services use for "slow down" or "try again", across S3, DynamoDB,
# SNS and SQS. 5xx statuses are retried whatever their code.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "Throttled",
        "ThrottlingError",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceeded",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflict",
        "TransactionConflictException",
        "TransactionInProgressException",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "KMSThrottling",
        "KMSThrottlingException",
        "LimitExceededException",
    }
)

_NETWORK_ERRORS = (
    ConnectionError,  # botocore's: covers connect timeouts and endpoint connection errors
    EndpointConnectionError,
    ConnectionClosedError,
    ReadTimeoutError,
    IncompleteReadError,
    ResponseStreamingError,
    HTTPClientError,
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or error_code(exc)


def is_retryable(exc: BaseException) -> bool:
    """Is this a throttle, a 5xx, a timeout or a dropped connection?"""
    if isinstance(exc, ClientError):
        return error_code(exc) in RETRYABLE_CODES or http_status(exc) >= 500
    return isinstance(exc, _NETWORK_ERRORS)


def translate(exc: BotoCoreError | ClientError, action: str) -> DocklineError:
    """The dockline error for a botocore failure while doing ``action`` (e.g.
    "publishing to SNS"): TransientError when retrying can help, else DocklineError.

    Callers ``raise translate(exc, ...) from exc``.
    """
    if isinstance(exc, ClientError):
        detail = f"{error_code(exc)}: {error_message(exc)}"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    if is_retryable(exc):
        return TransientError(f"{action} failed for now ({detail})")
    return DocklineError(f"{action} failed ({detail})")
