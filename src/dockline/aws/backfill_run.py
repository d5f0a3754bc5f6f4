"""Carrying out a backfill: where to send (the stack's outputs, or options), how
(queue messages or asynchronous invocations), and how fast (``--rate``).

See ``dockline.aws.backfill`` for what is sent and why a rerun is safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, islice
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from dockline.aws.backfill import (
    MAX_ROUNDS,
    MESSAGES_PER_CALL,
    Listed,
    Mode,
    Tally,
    event_body,
    is_versioned,
    list_objects,
    listing_prefixes,
    matching,
    unsettled,
)
from dockline.aws.errors import translate
from dockline.aws.outputs import OUTPUT_BUCKET, OUTPUT_FUNCTION, OUTPUT_QUEUE, OUTPUT_TABLE
from dockline.aws.pacing import TokenBucket
from dockline.aws.runtime import Clients, stack_outputs
from dockline.config import Settings
from dockline.errors import DocklineError, TransientError, UsageError


@dataclass(frozen=True, slots=True)
class Targets:
    """The bucket to walk, the table that holds the markers, and where to send."""

    bucket: str
    table: str
    mode: Mode
    queue_url: str | None = None
    function_name: str | None = None


def resolve_targets(
    settings: Settings,
    clients: Clients,
    *,
    bucket: str | None = None,
    table: str | None = None,
    queue_url: str | None = None,
    function_name: str | None = None,
    mode: str | None = None,
    stack_name: str | None = None,
) -> Targets:
    """Options first; what they leave open comes from the deployed stack's outputs (one
    DescribeStacks call, only then). The mode is ``--mode``, else what was named (a
    queue URL: queue; a function: direct), else the stack's (it has a ``QueueUrl``
    output only in queue mode). Raises UsageError, DocklineError."""
    if mode not in (None, "queue", "direct"):
        raise UsageError("--mode must be 'queue' or 'direct'")
    if mode is None and (queue_url or function_name):
        mode = "queue" if queue_url else "direct"
    sender_known = (mode == "queue" and queue_url) or (mode == "direct" and function_name)
    if not (bucket and table and sender_known):
        name = stack_name or settings.aws.stack_name
        outputs = stack_outputs(name, client=clients.cloudformation)
        bucket = bucket or outputs.get(OUTPUT_BUCKET)
        table = table or outputs.get(OUTPUT_TABLE)
        mode = mode or ("queue" if OUTPUT_QUEUE in outputs else "direct")
        queue_url = queue_url or outputs.get(OUTPUT_QUEUE)
        function_name = function_name or outputs.get(OUTPUT_FUNCTION)
        missing = [
            option
            for option, value in (
                ("--bucket", bucket),
                ("--table", table),
                ("--queue-url", queue_url if mode == "queue" else "-"),
                ("--function", function_name if mode == "direct" else "-"),
            )
            if not value
        ]
        if missing:
            raise DocklineError(f"stack {name!r} does not say {' and '.join(missing)}: give them as options")
    assert bucket and table and mode in ("queue", "direct")
    return Targets(bucket, table, "queue" if mode == "queue" else "direct", queue_url, function_name)


# -- senders ---------------------------------------------------------------------------
class Sender(Protocol):
    batch_size: int

    def send(self, batch: list[Listed]) -> None: ...


class QueueSender:
    """S3-shaped messages to the input queue, ten per SendMessageBatch; failed entries
    are sent again with backoff."""

    def __init__(self, sqs: Any, queue_url: str, *, region: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.region = region
        self.sleep = sleep
        self.batch_size = MESSAGES_PER_CALL

    def send(self, batch: list[Listed]) -> None:
        entries = [{"Id": str(n), "MessageBody": event_body(e, region=self.region)} for n, e in enumerate(batch)]
        for attempt in range(MAX_ROUNDS):
            try:
                answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "sending to the input queue") from exc
            failed = {f["Id"]: f for f in answer.get("Failed", [])}
            if not failed:
                return
            if any(f.get("SenderFault") for f in failed.values()):
                first = next(f for f in failed.values() if f.get("SenderFault"))
                raise DocklineError(f"the input queue refused a message ({first.get('Code')}: {first.get('Message')})")
            entries = [e for e in entries if e["Id"] in failed]
            self.sleep(min(0.1 * 2**attempt, 5.0))
        raise TransientError(f"the input queue kept failing {len(entries)} messages after {MAX_ROUNDS} tries")


class InvokeSender:
    """One asynchronous invocation per object version, as S3 invokes the function."""

    def __init__(self, lambda_client: Any, function_name: str, *, region: str) -> None:
        self.client = lambda_client
        self.function_name = function_name
        self.region = region
        self.batch_size = 1

    def send(self, batch: list[Listed]) -> None:
        for entry in batch:
            try:
                answer = self.client.invoke(
                    FunctionName=self.function_name,
                    InvocationType="Event",
                    Payload=event_body(entry, region=self.region).encode(),
                )
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, f"invoking function {self.function_name!r}") from exc
            if answer.get("StatusCode") != 202:
                raise TransientError(f"function {self.function_name!r} answered {answer.get('StatusCode')}, not 202")


def _batches(entries: Iterable[Listed], size: int) -> Iterator[list[Listed]]:
    source = iter(entries)
    while batch := list(islice(source, size)):
        yield batch


# -- the run ---------------------------------------------------------------------------
def run_backfill(
    targets: Targets,
    settings: Settings,
    clients: Clients,
    *,
    prefix: str | None = None,
    since: datetime | None = None,
    latest_only: bool = False,
    dry_run: bool = False,
    rate: float | None = None,
    on_progress: Callable[[Tally], None] | None = None,
    on_would_send: Callable[[Listed], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Tally:
    """Walk the bucket and send every matching, unsettled object version (see the
    module docstring of ``dockline.aws.backfill``). ``on_progress`` is called after each
    page of markers and each send. A failure stops the run with the tally so far in
    ``tally.errors``; rerunning resumes. Raises UsageError, DocklineError before sending."""
    tally = Tally(dry_run=dry_run, mode=targets.mode)
    region = str(clients.s3.meta.region_name or "us-east-1")
    sender: Sender = (
        QueueSender(clients.sqs, str(targets.queue_url), region=region, sleep=sleep)
        if targets.mode == "queue"
        else InvokeSender(clients.client("lambda"), str(targets.function_name), region=region)
    )
    # Never more than the rate per call: a batch of 10 at --rate 2 would be a burst of 10.
    size = sender.batch_size if rate is None else max(1, min(sender.batch_size, int(rate)))
    bucket = TokenBucket(rate, burst=size, sleep=sleep) if rate is not None else None
    versioned = is_versioned(clients.s3, targets.bucket)
    listed = chain.from_iterable(
        list_objects(clients.s3, targets.bucket, under, versioned=versioned)
        for under in listing_prefixes(settings.pipeline, prefix)
    )
    wanted = matching(listed, settings.pipeline, tally, since=since, latest_only=latest_only)
    report = on_progress or (lambda _tally: None)
    todo = unsettled(wanted, clients.dynamodb, targets.table, tally, sleep=sleep, on_chunk=report)
    try:
        for batch in _batches(todo, size):
            if dry_run:
                for entry in batch:
                    if on_would_send is not None:
                        on_would_send(entry)
            else:
                if bucket is not None:
                    bucket.acquire(len(batch))
                sender.send(batch)
            tally.sent += len(batch)
            report(tally)
        tally.finished = True
    except DocklineError as exc:
        tally.errors.append(str(exc))
    report(tally)
    return tally
