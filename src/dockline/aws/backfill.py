"""``dockline backfill``: hand the objects S3 never announced to the pipeline.

S3 sends events only for objects created after the notification exists; objects that
were in the bucket before the stack, or whose events were lost to a broken function,
are never delivered again. A backfill walks the bucket and, for every matching object
version without a settled file marker in the ledger table, sends the event S3 would
have sent:

- in queue mode, an S3-event-shaped message to the input queue (``SendMessageBatch``,
  ten at a time), so the function takes it like any other, with the queue's retries and
  dead-letter queue;
- in direct mode, an asynchronous invocation (``InvocationType=Event``) with an S3
  event, so Lambda's retries and on-failure destination apply.

The plan is a stream (list a page, filter, check markers 100 at a time, send), so the
memory use does not grow with the bucket. Nothing is kept on this machine: the ledger is
the checkpoint. Running the backfill again sends nothing that has settled meanwhile; a
run that crashed loses nothing, since the next run sends whatever has not settled. An
object that was sent but is not settled yet (still in the queue, or being processed) is
sent again: that is safe, because the handler is idempotent per object version (the
ledger's conditional writes and the marker's outbox flag: no second item, no second
notification).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Literal
from urllib.parse import quote_plus

from botocore.exceptions import BotoCoreError, ClientError

from dockline.aws import items as it
from dockline.aws.errors import translate
from dockline.aws.refs import version_of
from dockline.config import PipelineSettings
from dockline.errors import DocklineError, TransientError
from dockline.models import ObjectRef
from dockline.pipeline import iso
from dockline.routes import outermost

Mode = Literal["queue", "direct"]

MARKERS_PER_CALL = 100  # DynamoDB's limit per BatchGetItem
MESSAGES_PER_CALL = 10  # SQS's limit per SendMessageBatch
MAX_ROUNDS = 8  # retries of unprocessed keys / failed entries before giving up for now
CONFIGURATION_ID = "dockline-backfill"  # stands where S3 names the notification configuration


@dataclass(frozen=True, slots=True)
class Listed:
    """One object version found in the bucket."""

    ref: ObjectRef  # version: the version id, or the ETag in an unversioned bucket
    etag: str
    version_id: str | None
    last_modified: datetime
    latest: bool = True


@dataclass(slots=True)
class Tally:
    """What a backfill has done so far (the summary line and ``--json``)."""

    listed: int = 0  # object versions under the prefix
    settled: int = 0  # had a settled file marker: not sent
    sent: int = 0  # handed to the pipeline (or, in a dry run, would be)
    skipped_suffix: int = 0  # the pipeline's suffixes do not match
    skipped_since: int = 0  # last modified before --since
    skipped_older: int = 0  # not the current version (--latest-only)
    dry_run: bool = False
    mode: str = "queue"
    finished: bool = False
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        verb = "would send" if self.dry_run else "sent"
        skipped = f"skipped {self.skipped_since} by --since, {self.skipped_suffix} by suffix"
        if self.skipped_older:
            skipped += f", {self.skipped_older} older versions"
        return f"listed {self.listed}, already settled {self.settled}, {verb} {self.sent}, {skipped}"


# -- listing ---------------------------------------------------------------------------
def is_versioned(s3: Any, bucket: str) -> bool:
    """Has versioning ever been switched on (Enabled or Suspended)? Then the bucket may
    hold several versions of a key, each announced by its own event."""
    try:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"reading the versioning of bucket {bucket!r}") from exc
    return status in ("Enabled", "Suspended")


def list_objects(
    s3: Any, bucket: str, prefix: str, *, versioned: bool, page_size: int | None = None
) -> Iterator[Listed]:
    """Every object version under ``prefix``, page by page (ListObjectVersions when the
    bucket is versioned, else ListObjectsV2; delete markers are not objects).

    Raises TransientError, DocklineError."""
    operation = "list_object_versions" if versioned else "list_objects_v2"
    try:
        config = {"PageSize": page_size} if page_size else {}  # S3's default and limit: 1,000
        for page in s3.get_paginator(operation).paginate(Bucket=bucket, Prefix=prefix, PaginationConfig=config):
            for entry in page.get("Versions" if versioned else "Contents", []):
                etag = str(entry.get("ETag", "")).strip('"')
                version_id = entry.get("VersionId") if versioned else None
                modified = entry["LastModified"]
                ref = ObjectRef(
                    bucket=bucket,
                    key=entry["Key"],
                    version=version_of(etag=etag, version_id=version_id),
                    size=int(entry.get("Size", 0)),
                    event_time=iso(modified),
                )
                yield Listed(ref, etag, version_id, modified, bool(entry.get("IsLatest", True)))
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"listing bucket {bucket!r}") from exc


def listing_prefixes(pipeline: PipelineSettings, prefix: str | None) -> tuple[str, ...]:
    """The prefixes to list: every route's (one inside another's is listed with it), each
    narrowed to ``--prefix`` where that lies inside it. Raises DocklineError when
    ``--prefix`` overlaps no route's prefix: the function would skip every such key."""
    outer = pipeline.table.outer_prefixes
    if prefix is None:
        return outer
    overlapping = (p for p in outer if prefix.startswith(p) or p.startswith(prefix))
    chosen = outermost(prefix if prefix.startswith(p) else p for p in overlapping)
    if not chosen:
        raise DocklineError(
            f"--prefix {prefix!r} is outside every route's prefix ({', '.join(outer)}): the function skips those keys"
        )
    return chosen


def matching(
    listed: Iterable[Listed], pipeline: PipelineSettings, tally: Tally, *, since: datetime | None, latest_only: bool
) -> Iterator[Listed]:
    """The listed versions the pipeline would take, counting the others in ``tally``."""
    for entry in listed:
        tally.listed += 1
        if not pipeline.matches(entry.ref.key):
            tally.skipped_suffix += 1
        elif since is not None and entry.last_modified < since:
            tally.skipped_since += 1
        elif latest_only and not entry.latest:
            tally.skipped_older += 1
        else:
            yield entry


# -- the ledger's markers --------------------------------------------------------------
def unsettled(
    candidates: Iterable[Listed],
    dynamodb: Any,
    table: str,
    tally: Tally,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_chunk: Callable[[Tally], None] | None = None,
) -> Iterator[Listed]:
    """The candidates whose file marker is missing or still owes its notification,
    checked with BatchGetItem, 100 markers per call (``on_chunk`` after each call).
    Raises TransientError, DocklineError."""
    source = iter(candidates)
    while chunk := list(islice(source, MARKERS_PER_CALL)):
        done = settled_markers(dynamodb, table, [it.marker_pk(c.ref) for c in chunk], sleep=sleep)
        for entry in chunk:
            if it.marker_pk(entry.ref) in done:
                tally.settled += 1
        if on_chunk is not None:
            on_chunk(tally)
        yield from (entry for entry in chunk if it.marker_pk(entry.ref) not in done)


def settled_markers(
    dynamodb: Any, table: str, pks: list[str], *, sleep: Callable[[float], None] = time.sleep
) -> set[str]:
    """Which of ``pks`` (at most 100) are markers of settled files.

    A marker whose ``notified`` flag is still false belongs to a file whose notification
    did not go out: it is not settled, and sending it again lets the handler close the
    outbox. Unprocessed keys are asked again with backoff. Raises TransientError,
    DocklineError."""
    pending: list[dict[str, Any]] = [{"pk": it.s(pk)} for pk in dict.fromkeys(pks)]
    found: set[str] = set()
    for attempt in range(MAX_ROUNDS):
        try:
            answer = dynamodb.batch_get_item(
                RequestItems={
                    table: {
                        "Keys": pending,
                        "ProjectionExpression": "pk, #notified",
                        "ExpressionAttributeNames": {"#notified": "notified"},
                        "ConsistentRead": True,  # a marker written a moment ago counts
                    }
                }
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"reading file markers from table {table!r}") from exc
        for item in answer.get("Responses", {}).get(table, []):
            if it.flag(item, "notified"):
                found.add(str(it.text(item, "pk")))
        pending = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if not pending:
            return found
        sleep(min(0.05 * 2**attempt, 2.0))
    raise TransientError(f"table {table!r} left {len(pending)} markers unread after {MAX_ROUNDS} tries (throttled)")


# -- what is sent ----------------------------------------------------------------------
def s3_event(entry: Listed, *, region: str) -> dict[str, Any]:
    """The S3 event S3 would have sent for ``entry`` (one record, the key URL-encoded as
    S3 encodes it). ``eventTime`` is the object's LastModified, so ``on_conflict =
    "overwrite"`` orders backfilled versions like announced ones."""
    ref = entry.ref
    obj: dict[str, Any] = {"key": quote_plus(ref.key, safe="/"), "size": ref.size or 0, "eTag": entry.etag}
    if entry.version_id and entry.version_id != "null":
        obj["versionId"] = entry.version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": ref.event_time,
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": CONFIGURATION_ID},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": CONFIGURATION_ID,
                    "bucket": {"name": ref.bucket, "arn": f"arn:aws:s3:::{ref.bucket}"},
                    "object": obj,
                },
            }
        ]
    }


def event_body(entry: Listed, *, region: str) -> str:
    return json.dumps(s3_event(entry, region=region), ensure_ascii=False, separators=(",", ":"))


def now_utc() -> datetime:
    return datetime.now(UTC)
