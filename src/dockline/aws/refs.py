"""How an S3 object version is named: pure helpers shared by the events parser, the
store, the ledger and the dead-letter tools (no boto3 here).

``ObjectRef.version`` carries the S3 version id when the bucket is versioned, else
the object's ETag (without quotes).
"""

from __future__ import annotations

import re

from dockline.errors import PermanentError
from dockline.models import ObjectRef

# An S3 ETag: the hex MD5 of a single-part upload (32 hex chars also for SSE-KMS),
# "<hex>-<parts>" for multipart uploads. Version ids never look like this: they are
# opaque URL-safe strings with mixed case (moto's are UUIDs with dashes).
_ETAG = re.compile(r"^[0-9a-f]{32}(-[0-9]+)?$")


def is_etag(version: str) -> bool:
    """Does ``version`` hold an ETag (as opposed to an S3 version id)?"""
    return bool(_ETAG.match(version.strip('"')))


def version_of(*, etag: str | None, version_id: str | None) -> str:
    """The ``ObjectRef.version`` of an object: its version id if the bucket is
    versioned, else its ETag without quotes.

    Raises PermanentError when neither is known.
    """
    if version_id and version_id != "null":
        return version_id
    if etag and etag.strip('"'):
        return etag.strip('"')
    raise PermanentError("the event names neither an ETag nor a version id for the object")


def pinned_arguments(ref: ObjectRef) -> dict[str, str]:
    """GetObject/HeadObject arguments that address exactly ``ref``'s version:
    ``VersionId`` for a version id, ``IfMatch`` for an ETag."""
    args = {"Bucket": ref.bucket, "Key": ref.key}
    if is_etag(ref.version):
        args["IfMatch"] = '"' + ref.version.strip('"') + '"'
    else:
        args["VersionId"] = ref.version
    return args


def reference_uri(ref: ObjectRef) -> str:
    """Where an oversized payload can be read: ``s3://bucket/key?versionId=..`` or ``?etag=..``."""
    kind = "etag" if is_etag(ref.version) else "versionId"
    return f"{ref.uri}?{kind}={ref.version}"
