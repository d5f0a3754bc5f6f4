"""S3Store: the object-store port on S3, streaming one pinned object version.

``ObjectRef.version`` carries the S3 version id when the event had one, else the
ETag (see ``dockline.aws.refs``). A read is pinned to that version: ``VersionId``
for versioned buckets, ``IfMatch`` on the ETag otherwise, so a file overwritten
between the event and the read is never processed under the old version's name.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from dockline.aws.errors import error_code, error_message, http_status, is_retryable, translate
from dockline.aws.refs import pinned_arguments
from dockline.errors import ObjectGoneError, PermanentError, TransientError
from dockline.models import ObjectRef
from dockline.ports import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "KMS.AccessDeniedException"})


def _read_error(exc: ClientError, ref: ObjectRef) -> Exception:
    code, status = error_code(exc), http_status(exc)
    if code in _GONE_CODES or status == 404:
        return ObjectGoneError("object no longer exists")
    if code == "PreconditionFailed" or status == 412:
        return ObjectGoneError("object was replaced by a newer version before it could be read")
    if code in _DENIED_CODES or status == 403:
        # S3 also answers 403 for a missing key when the caller may not list the bucket.
        return PermanentError(
            f"access denied reading {ref.uri}: the function's role needs s3:GetObject (and s3:GetObjectVersion "
            "for versioned buckets, kms:Decrypt for KMS-encrypted objects); without s3:ListBucket S3 also "
            "answers this way for a key that does not exist"
        )
    if code == "InvalidObjectState":
        return PermanentError(f"{ref.uri} is archived (e.g. in Glacier) and must be restored before it can be read")
    if is_retryable(exc):
        return translate(exc, f"reading {ref.uri}")
    return PermanentError(f"S3 refused to read {ref.uri} ({code or status}: {error_message(exc)})")


class _GuardedBody(io.RawIOBase):
    """A StreamingBody that reads in chunks and turns network failures into TransientError."""

    def __init__(self, body: Any, uri: str) -> None:
        self._body = body
        self._uri = uri

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._body.read(len(buffer))
        except (BotoCoreError, OSError) as exc:
            raise TransientError(f"reading {self._uri} was interrupted ({type(exc).__name__}: {exc})") from exc
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


class S3Store(ObjectStore):
    """Streams object versions from S3. The client is built on first use, once."""

    def __init__(self, *, client: S3Client | None = None, client_factory: Callable[[], S3Client] | None = None) -> None:
        self._client = client
        self._factory = client_factory

    @property
    def client(self) -> S3Client:
        if self._client is None:
            if self._factory is not None:
                self._client = self._factory()
            else:
                import boto3

                self._client = boto3.client("s3")
        return self._client

    @contextmanager
    def _open(self, ref: ObjectRef) -> Iterator[BinaryIO]:
        try:
            response = self.client.get_object(**pinned_arguments(ref))  # type: ignore[arg-type]
        except ClientError as exc:
            raise _read_error(exc, ref) from exc
        except BotoCoreError as exc:
            raise translate(exc, f"reading {ref.uri}") from exc
        raw = _GuardedBody(response["Body"], ref.uri)
        try:
            yield io.BufferedReader(raw, buffer_size=1 << 16)
        finally:
            raw.close()

    def open(self, ref: ObjectRef) -> AbstractContextManager[BinaryIO]:
        """Open ``ref``'s pinned version for streaming reads (a context manager).

        Raises ObjectGoneError when the object or version is gone or was replaced,
        PermanentError when S3 refuses (access denied, archived), TransientError for
        throttling, 5xx, timeouts and dropped connections (also mid-stream).
        """
        return self._open(ref)
