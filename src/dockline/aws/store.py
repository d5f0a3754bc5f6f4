"""S3Store: the object-store port on S3, streaming one pinned object version.

``ObjectRef.version`` carries the S3 version id when the event had one, else the
ETag (see ``dockline.aws.refs``). A read is pinned to that version: ``VersionId``
for versioned buckets, ``IfMatch`` on the ETag otherwise, so a file overwritten
between the event and the read is never processed under the old version's name.

When the pinned version cannot be read (NoSuchKey, NoSuchVersion, PreconditionFailed)
one HeadObject of the key tells why -- only then, so a file that reads fine costs one
GetObject: a key that now holds a newer version raises ``SupersededError`` naming it (a
harmless race: the newer version has its own event); a key that is gone raises
``ObjectGoneError("object no longer exists")``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from dockline.aws.clients import made_client
from dockline.aws.errors import error_code, error_message, http_status, is_retryable, translate
from dockline.aws.refs import is_etag, pinned_arguments
from dockline.errors import ObjectGoneError, PermanentError, SupersededError, TransientError
from dockline.models import ObjectRef
from dockline.ports import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "KMS.AccessDeniedException"})
_GONE = "object no longer exists"
_REPLACED = "object was replaced by a newer version{newer} before it could be read"


def _not_readable(exc: ClientError) -> bool:
    """Does S3 say the pinned version is not there (missing key or version, other ETag)?"""
    code, status = error_code(exc), http_status(exc)
    return code in _GONE_CODES or code == "PreconditionFailed" or status in (404, 412)


def _read_error(exc: ClientError, ref: ObjectRef) -> Exception:
    """What a refused GetObject means, for every answer but "not there" (see _why_gone)."""
    code, status = error_code(exc), http_status(exc)
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
        # GetObject answers fetched by located() for open() to use: a response, or the error to raise.
        self._fetched: dict[ObjectRef, Any] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> S3Client:
        self._client = made_client(self._client, self._factory, "s3")
        return self._client

    def _get(self, ref: ObjectRef) -> Any:
        """GetObject of ``ref``'s pinned version. Raises as ``open`` documents."""
        try:
            return self.client.get_object(**pinned_arguments(ref))  # type: ignore[arg-type]
        except ClientError as exc:
            if _not_readable(exc):
                replaced = error_code(exc) == "PreconditionFailed" or http_status(exc) == 412
                raise self._why_gone(ref, replaced=replaced) from exc
            raise _read_error(exc, ref) from exc
        except BotoCoreError as exc:
            raise translate(exc, f"reading {ref.uri}") from exc

    def _why_gone(self, ref: ObjectRef, *, replaced: bool) -> Exception:
        """Why ``ref``'s pinned version is not there, from one HeadObject of its key.

        ``replaced``: S3 answered PreconditionFailed, so the key held another ETag then.
        """
        try:
            head = self.client.head_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as exc:
            if error_code(exc) in _GONE_CODES or http_status(exc) == 404:
                return ObjectGoneError(_GONE)  # deleted, and not replaced
            if is_retryable(exc):
                return translate(exc, f"looking up the current version of {ref.uri}")
            # Not allowed to look (no s3:ListBucket, say): say what the GetObject said.
            return SupersededError(_REPLACED.format(newer="")) if replaced else ObjectGoneError(_GONE)
        except BotoCoreError as exc:
            return translate(exc, f"looking up the current version of {ref.uri}")
        etag = str(head.get("ETag") or "").strip('"')
        version_id = head.get("VersionId")
        current = etag if is_etag(ref.version) or not version_id or version_id == "null" else str(version_id)
        if current == ref.version:  # read back the very version S3 just said was missing: a race, try again
            return TransientError(f"{ref.uri} was not found, then found again: reading it once more")
        # (When the newest version itself was deleted, the key holds an older one and this
        # still says superseded: S3 does not tell how old the deleted version was, and
        # comparing the event's time with LastModified would trust two clocks.)
        return SupersededError(_REPLACED.format(newer=f" ({current})"), newer=current)

    @contextmanager
    def located(self, ref: ObjectRef, raw_key: str | None) -> Iterator[ObjectRef]:
        """``ref``, or ``ref`` under ``raw_key`` when only that key holds the object.

        For events whose key may or may not be URL-encoded (EventBridge): the decoded key
        ``ref.key`` is read first and, only when it does not hold the pinned version,
        ``raw_key``. The raw key wins when it holds the version; else the key that still
        exists (a newer version replaced it there); else the decoded key, which no longer
        exists. The answer that decided is kept for the ``open`` of the returned ref inside
        the ``with`` block, so a file costs no more calls than when its key is certain.
        Never raises: an error is kept, and raised by that ``open``.
        """
        if raw_key is None or raw_key == ref.key:
            yield ref
            return
        chosen, answer = ref, self._fetch(ref)
        if isinstance(answer, ObjectGoneError):
            raw = replace(ref, key=raw_key)
            raw_answer = self._fetch(raw)
            if not isinstance(raw_answer, Exception) or (_deleted(answer) and not _deleted(raw_answer)):
                chosen, answer = raw, raw_answer
        with self._lock:
            self._fetched[chosen] = answer
        try:
            yield chosen
        finally:
            _close(self._take(chosen))

    def _fetch(self, ref: ObjectRef) -> Any:
        try:
            return self._get(ref)
        except Exception as exc:  # noqa: BLE001 - kept for open() to raise, where the pipeline expects it
            return exc

    def _take(self, ref: ObjectRef) -> Any:
        """The answer located() kept for ``ref``, if any (then forgotten)."""
        with self._lock:
            return self._fetched.pop(ref, None)

    @contextmanager
    def _open(self, ref: ObjectRef) -> Iterator[BinaryIO]:
        kept = self._take(ref)
        if isinstance(kept, Exception):
            raise kept
        response = kept if kept is not None else self._get(ref)
        raw = _GuardedBody(response["Body"], ref.uri)
        try:
            yield io.BufferedReader(raw, buffer_size=1 << 16)
        finally:
            raw.close()

    def open(self, ref: ObjectRef) -> AbstractContextManager[BinaryIO]:
        """Open ``ref``'s pinned version for streaming reads (a context manager).

        Raises SupersededError (naming the newer version) when the key now holds a newer
        version, ObjectGoneError when the object is gone, PermanentError when S3 refuses
        (access denied, archived), TransientError for throttling, 5xx, timeouts and
        dropped connections (also mid-stream).
        """
        return self._open(ref)


def _deleted(answer: Any) -> bool:
    """Is ``answer`` the error for a key that does not exist (not one replaced by a newer version)?"""
    return isinstance(answer, ObjectGoneError) and not isinstance(answer, SupersededError)


def _close(answer: Any) -> None:
    """Release a GetObject answer nobody will read."""
    if isinstance(answer, dict) and answer.get("Body") is not None:
        answer["Body"].close()
