"""The Lambda entry point: ``dockline.aws.handler.lambda_handler``.

Configured by the seed's ``TABLE_NAME`` and ``TOPIC_ARN`` (required), ``DLQ_URL``
(optional: where permanently failed files go) and ``DOCKLINE_*`` overrides of the
pipeline settings. Clients and the pipeline are built once per container, on the first
invocation -- never at import.

Every record is processed on its own (consecutive small files in a batch that shares
some DynamoDB and SNS calls, each with its own outcome); one bad record never aborts the
others:

- a file with bad content is *settled* as failed: recorded (status ``failed`` and the
  reason), notified, dead-lettered -- and the invocation succeeds, since retrying the
  same bytes cannot help;
- a transient failure that outlived the pipeline's retries is handed back to Lambda:
  in an SQS batch its ``messageId`` is listed in ``batchItemFailures``; for an S3 event
  delivered directly the handler raises after finishing the other records, so Lambda
  retries the event (the ledger makes the retry idempotent);
- a malformed record is skipped with a logged reason; in an SQS batch its message is
  listed in ``batchItemFailures`` (the queue's redrive moves it to the DLQ), unless it
  has no usable ``messageId`` (then it is only logged: an empty identifier would fail
  the whole batch);
- a file is started only while more time is left than the slowest file so far in this
  container plus ``SAFETY_MARGIN_MS`` (a batch of k files: k times that file, plus the
  margin; a container's first file goes alone, to set the pace); the rest are handed back
  like transient failures.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from dockline.aws.events import ParsedEvent, WorkItem, parse_event
from dockline.aws.runtime import AwsEngine, engine_from_env
from dockline.errors import TransientError
from dockline.lifecycle import Result, Step, Work
from dockline.models import Outcome, Status

SERVICE = "dockline"
NAMESPACE = "Dockline"
# A file is started only while more than the slowest file seen so far (in this
# container) plus this margin is left; the rest are handed back instead of letting a
# timeout fail the whole batch. The margin covers handing back and flushing metrics, and
# the first file of a container, before any has been timed. A fixed margin alone was not
# enough: under total throttling one file took 14.6 s.
SAFETY_MARGIN_MS = 10_000
# Consecutive small files of one invocation go through the core's batch path together
# (``Lifecycle.run_batch``), sharing the ledger's marker writes (BatchWriteItem) and the
# notifications (PublishBatch): at most BATCH_FILES (SNS takes 10 entries a PublishBatch;
# an SQS batch holds 10 messages by default) of at most SMALL_FILE_BYTES each, all read
# into memory together. Bigger files stream through the per-file path.
BATCH_FILES = 10
SMALL_FILE_BYTES = 256 * 1024

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

_STATUS_METRIC = {
    Status.PROCESSED: "FilesProcessed",
    Status.FAILED: "FilesFailed",
    Status.DUPLICATE: "FilesDuplicate",
    Status.CONFLICT: "FilesConflict",
    Status.SUPERSEDED: "FilesSuperseded",  # a harmless race: counted, never alarmed on
}

_engine: AwsEngine | None = None
_engine_lock = threading.Lock()


class FileTimes:
    """The slowest file this container has processed, across invocations (a warm
    container keeps it: the throttling that slowed one file usually lasts)."""

    def __init__(self) -> None:
        self._worst_ms = 0.0
        self._lock = threading.Lock()

    @property
    def worst_ms(self) -> float:
        return self._worst_ms

    def record(self, elapsed_ms: float) -> None:
        with self._lock:
            self._worst_ms = max(self._worst_ms, elapsed_ms)

    def needed_ms(self) -> float:
        """What must be left to start one more file."""
        return self._worst_ms + SAFETY_MARGIN_MS


_file_times = FileTimes()


def current_engine() -> AwsEngine:
    """The container's engine, built on first use. Raises ConfigError for a bad environment."""
    global _engine  # noqa: PLW0603 - one engine per container is the point
    with _engine_lock:
        if _engine is None:
            _engine = engine_from_env()
        return _engine


def reset_engine() -> None:
    """Forget the container's engine and file times, as a new container would (tests
    change the environment between cases)."""
    global _engine, _file_times  # noqa: PLW0603
    with _engine_lock:
        _engine = None
        _file_times = FileTimes()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process every file the event names. Returns ``{"batchItemFailures": [...]}`` for
    SQS batches, a summary of the files otherwise.

    Raises ConfigError when TABLE_NAME or TOPIC_ARN is missing, and TransientError (for
    direct S3 events) when some file should be retried by Lambda.
    """
    return handle(event, current_engine(), context=context)


@dataclass
class _Run:
    parsed: ParsedEvent
    retry: list[WorkItem] = field(default_factory=list)
    failed_messages: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def hand_back(self, item: WorkItem) -> None:
        self.retry.append(item)
        if item.message_id is not None and item.message_id not in self.failed_messages:
            self.failed_messages.append(item.message_id)


def handle(
    event: Any, engine: AwsEngine, *, context: Any = None, file_times: FileTimes | None = None
) -> dict[str, Any]:
    """``lambda_handler`` with the engine handed in (see there). ``file_times`` defaults
    to the container's."""
    times = file_times if file_times is not None else _file_times
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(request_id=request_id)
    run = _Run(parse_event(event, engine.settings.pipeline))
    for reason in run.parsed.skipped:
        logger.info("skipped", extra={"reason": reason})
    for bad in run.parsed.malformed:
        logger.error("malformed event record", extra={"reason": bad.reason, "message_id": bad.message_id})
        if bad.message_id is not None and bad.message_id not in run.failed_messages:
            # left to the queue's redrive policy, which moves it to the DLQ: nothing is lost
            run.failed_messages.append(bad.message_id)
    try:
        pending = list(run.parsed.items)
        while pending:
            left = _remaining_ms(context)
            if left is not None and left < times.needed_ms():
                item = pending.pop(0)
                logger.warning(
                    "handing back a file: not enough time left to process it",
                    extra={**_where(item), "remaining_ms": left, "slowest_file_ms": round(times.worst_ms)},
                )
                run.hand_back(item)
                continue
            group = _take(pending, _files_that_fit(left, times))
            started = time.monotonic()
            try:
                if len(group) > 1:
                    _process_batch(group, engine, run)
                else:
                    [item] = group
                    with engine.store.located(item.ref, item.raw_key) as ref:  # EventBridge: decoded or raw key
                        _process(item if ref == item.ref else replace(item, ref=ref), engine, run)
            finally:
                times.record((time.monotonic() - started) * 1000 / len(group))
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()
    if run.parsed.from_sqs:
        return {"batchItemFailures": [{"itemIdentifier": m} for m in run.failed_messages]}
    if run.retry:
        keys = ", ".join(repr(item.ref.key) for item in run.retry[:5])
        raise TransientError(f"{len(run.retry)} of {len(run.parsed.items)} files must be retried: {keys}")
    return {"files": [_summary(outcome) for outcome in run.outcomes]}


def _files_that_fit(left_ms: int | None, times: FileTimes) -> int:
    """How many files the next batch may take: as many as the time left holds at the
    slowest file's pace, plus the margin. Before any file is timed, one (it sets the pace)."""
    if left_ms is None:
        return BATCH_FILES
    if times.worst_ms <= 0:
        return 1
    return max(1, min(BATCH_FILES, int((left_ms - SAFETY_MARGIN_MS) // times.worst_ms)))


def _take(pending: list[WorkItem], most: int) -> list[WorkItem]:
    """The next file, and the small files right after it, up to ``most``, as one batch. A
    file whose key is uncertain (EventBridge), a big or unsized one, and a second delivery
    of a version already in the batch each go on their own."""
    group = [pending.pop(0)]
    if not _batchable(group[0]):
        return group
    versions = {group[0].ref.identity}
    while pending and len(group) < most and _batchable(pending[0]) and pending[0].ref.identity not in versions:
        versions.add(pending[0].ref.identity)
        group.append(pending.pop(0))
    return group


def _batchable(item: WorkItem) -> bool:
    size = item.ref.size
    return (item.raw_key is None or item.raw_key == item.ref.key) and size is not None and size <= SMALL_FILE_BYTES


def _work(item: WorkItem, engine: AwsEngine) -> Work:
    # On the delivery the queue would move to its DLQ without a reason, the lifecycle
    # settles the file as failed instead, with the reason and a dockline dead letter.
    last = item.message_id is not None and engine.max_receive_count and item.attempts >= engine.max_receive_count
    return Work(item.ref, item.attempts, give_up_after=item.attempts if last else None)


def _process(item: WorkItem, engine: AwsEngine, run: _Run) -> None:
    _record(item, engine.lifecycle.run(_work(item, engine)), run)


def _process_batch(items: list[WorkItem], engine: AwsEngine, run: _Run) -> None:
    """Small files through the core's batch path: each gets the result ``_process`` would
    give it; the ledger and the topic share their calls (markers, notifications)."""
    results = engine.lifecycle.run_batch([_work(item, engine) for item in items])
    for item, result in zip(items, results, strict=True):
        _record(item, result, run)


def _record(item: WorkItem, result: Result, run: _Run) -> None:
    if result.step is not Step.SETTLED or result.outcome is None:
        _log_retry(item, result.reason, unexpected=result.unexpected)
        run.hand_back(item)
        return
    outcome = result.outcome
    run.outcomes.append(outcome)
    if outcome.earlier:  # a redelivery (SQS and S3 deliver at least once): counted when it settled
        logger.info("file already settled", extra={**_where(item), **_summary(outcome), "attempts": outcome.attempts})
        return
    metrics.add_metric(name=_STATUS_METRIC.get(outcome.status, "FilesFailed"), unit=MetricUnit.Count, value=1)
    if outcome.records:
        metrics.add_metric(name="RecordsWritten", unit=MetricUnit.Count, value=outcome.records)
    log = logger.warning if outcome.status in (Status.FAILED, Status.CONFLICT) else logger.info
    log("file settled", extra={**_where(item), **_summary(outcome), "attempts": outcome.attempts})


def _log_retry(item: WorkItem, reason: str, *, unexpected: bool) -> None:
    extra = {**_where(item), "status": "retry", "reason": reason}
    if unexpected:  # not one of ours: a bug or an unexpected library error (its traceback is logged)
        logger.error("file will be retried after an unexpected error", extra=extra)
    else:
        logger.warning("file will be retried", extra=extra)


def _where(item: WorkItem) -> dict[str, Any]:
    return {
        "bucket": item.ref.bucket,
        "key": item.ref.key,
        "version": item.ref.version,
        "message_id": item.message_id,
    }


def _summary(outcome: Outcome) -> dict[str, Any]:
    return {
        "key": outcome.ref.key,
        "status": str(outcome.status),
        "pk": outcome.pk,
        "reason": outcome.error,
        "records": outcome.records,
        "notified": outcome.notified,
    }


def _remaining_ms(context: Any) -> int | None:
    """Milliseconds left before Lambda stops the function; None without a context."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else None
