"""``dockline status --aws``: the deployed stack's picture, read-only.

- the input queue's depth (``ApproximateNumberOfMessages`` and ``...NotVisible``) and the
  age of its oldest message (CloudWatch ``AWS/SQS ApproximateAgeOfOldestMessage``: SQS has
  no attribute for it);
- the dead-letter queue's depth;
- counts by state from the table's file markers: a Scan with a filter. A Scan reads the
  *whole* table (every record item too) and the filter only trims the answer, so it costs
  about one read unit per 8 KB of table (eventually consistent, on demand); the consumed
  units are shown. ``--skip-scan`` leaves it out;
- the function's CloudWatch metrics over the last 1, 5 and 15 minutes: ``AWS/Lambda``
  Invocations, Errors and Throttles, and dockline's own EMF metrics (namespace
  ``Dockline``, dimension ``service``). When CloudWatch cannot be read the rest is still
  shown, with a note saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dockline.aws import items as it
from dockline.aws.errors import translate
from dockline.aws.outputs import OUTPUT_DLQ, OUTPUT_FUNCTION, OUTPUT_QUEUE, OUTPUT_TABLE
from dockline.aws.runtime import Clients, stack_outputs
from dockline.models import Status

WINDOWS = ((1, "1m"), (5, "5m"), (15, "15m"))
LAMBDA_METRICS = ("Invocations", "Errors", "Throttles")
DOCKLINE_NAMESPACE, DOCKLINE_SERVICE = "Dockline", "dockline"  # as the handler's Powertools Metrics
DOCKLINE_METRICS = ("FilesProcessed", "FilesFailed", "FilesDuplicate", "FilesConflict", "RecordsWritten")


@dataclass
class QueueDepth:
    url: str
    waiting: int
    in_flight: int
    delayed: int = 0
    oldest_age_seconds: float | None = None


@dataclass
class AwsStatus:
    stack: str
    mode: str
    queue: QueueDepth | None
    dead_letters: QueueDepth | None
    states: dict[str, int] | None = None
    scanned_items: int = 0
    read_units: float = 0.0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        def queue(depth: QueueDepth | None) -> dict[str, Any] | None:
            return None if depth is None else dict(vars(depth))

        return {
            "stack": self.stack,
            "mode": self.mode,
            "queue": queue(self.queue),
            "dead_letters": queue(self.dead_letters),
            "states": self.states,
            "scan": None if self.states is None else {"items": self.scanned_items, "read_units": self.read_units},
            "metrics": self.metrics,
            "notes": self.notes,
            "problems": self.problems,
            "healthy": self.healthy,
        }


def queue_depth(sqs: Any, url: str) -> QueueDepth:
    """Raises TransientError, DocklineError."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    try:
        got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"reading queue {url}") from exc
    return QueueDepth(url, *(int(got.get(name, 0)) for name in names))


def counts_by_state(dynamodb: Any, table: str) -> tuple[dict[str, int], int, float]:
    """Files by state from the markers, the items scanned and the read units consumed.
    Raises TransientError, DocklineError."""
    counts = {str(status): 0 for status in Status if status.is_final}
    scanned, units = 0, 0.0
    args: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :marker)",
        "ProjectionExpression": "#status",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": {":marker": it.s(it.MARKER_PREFIX)},
        "ReturnConsumedCapacity": "TOTAL",
    }
    try:
        while True:
            page = dynamodb.scan(**args)
            scanned += int(page.get("ScannedCount", 0))
            units += float(page.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
            for item in page.get("Items", []):
                state = it.text(item, "status") or "unknown"
                counts[state] = counts.get(state, 0) + 1
            if "LastEvaluatedKey" not in page:
                return counts, scanned, units
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"scanning table {table!r}") from exc


def _query(qid: str, namespace: str, name: str, dimension: tuple[str, str], stat: str) -> dict[str, Any]:
    metric = {"Namespace": namespace, "MetricName": name, "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}]}
    return {"Id": qid, "MetricStat": {"Metric": metric, "Period": 60, "Stat": stat}, "ReturnData": True}


def read_metrics(
    cloudwatch: Any, *, function: str | None, queue_name: str | None, now: datetime
) -> tuple[dict[str, dict[str, float]], float | None, list[str]]:
    """Sums per metric over the last 1/5/15 minutes (per-minute datapoints, each window
    with the minute that overlaps its start), the queue's oldest-message age, and notes on what was missing.
    Never raises: CloudWatch is optional for a status."""
    queries: dict[str, tuple[str, dict[str, Any]]] = {}
    if function:
        for n, name in enumerate(LAMBDA_METRICS):
            queries[f"l{n}"] = (name, _query(f"l{n}", "AWS/Lambda", name, ("FunctionName", function), "Sum"))
    for n, name in enumerate(DOCKLINE_METRICS):
        queries[f"d{n}"] = (name, _query(f"d{n}", DOCKLINE_NAMESPACE, name, ("service", DOCKLINE_SERVICE), "Sum"))
    if queue_name:
        queries["age"] = (
            "age",
            _query("age", "AWS/SQS", "ApproximateAgeOfOldestMessage", ("QueueName", queue_name), "Maximum"),
        )
    try:
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=[query for _, query in queries.values()],
            StartTime=now - timedelta(minutes=15),
            EndTime=now + timedelta(minutes=1),
            ScanBy="TimestampDescending",
        )
    except (ClientError, BotoCoreError) as exc:
        return {}, None, [f"CloudWatch metrics are not available: {translate(exc, 'GetMetricData')}"]
    sums: dict[str, dict[str, float]] = {}
    age: float | None = None
    for result in answer.get("MetricDataResults", []):
        name, _ = queries.get(result.get("Id", ""), ("", {}))
        points = list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
        if name == "age":
            age = float(max(points)[1]) if points else None  # the newest datapoint
            continue
        if name:
            # A datapoint is stamped with the start of its minute: a window takes every
            # minute that overlaps it (so "1m" is the current minute and the one before).
            sums[name] = {
                label: float(sum(v for t, v in points if t > now - timedelta(minutes=minutes + 1)))
                for minutes, label in WINDOWS
            }
    notes = []
    if queue_name and age is None:
        notes.append("the age of the oldest message has no CloudWatch datapoint in the last 15 minutes")
    return sums, age, notes


def read_aws_status(
    stack_name: str,
    clients: Clients,
    *,
    scan: bool = True,
    max_backlog_age: float = 900.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AwsStatus:
    """The stack's picture (see the module docstring). Raises DocklineError when the
    stack, its queues or its table cannot be read."""
    outputs = stack_outputs(stack_name, client=clients.cloudformation)
    queue_url, dlq_url = outputs.get(OUTPUT_QUEUE), outputs.get(OUTPUT_DLQ)
    status = AwsStatus(
        stack=stack_name,
        mode="queue" if queue_url else "direct",
        queue=queue_depth(clients.sqs, queue_url) if queue_url else None,
        dead_letters=queue_depth(clients.sqs, dlq_url) if dlq_url else None,
    )
    table = outputs.get(OUTPUT_TABLE)
    if scan and table:
        status.states, status.scanned_items, status.read_units = counts_by_state(clients.dynamodb, table)
    elif scan:
        status.notes.append(f"stack {stack_name!r} has no {OUTPUT_TABLE} output: no counts by state")
    queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1] if queue_url else None
    status.metrics, age, notes = read_metrics(
        clients.client("cloudwatch"), function=outputs.get(OUTPUT_FUNCTION), queue_name=queue_name, now=now()
    )
    status.notes.extend(notes)
    if status.queue is not None:
        status.queue.oldest_age_seconds = age
    status.problems = _problems(status, max_backlog_age)
    return status


def _problems(status: AwsStatus, max_backlog_age: float) -> list[str]:
    problems = []
    failed = (status.states or {}).get(str(Status.FAILED), 0)
    if failed:
        problems.append(f"{failed} files failed")
    letters = status.dead_letters
    if letters is not None and letters.waiting + letters.in_flight:
        problems.append(f"{letters.waiting + letters.in_flight} dead letters wait in {letters.url}")
    age = status.queue.oldest_age_seconds if status.queue else None
    if age is not None and age > max_backlog_age:
        problems.append(f"the oldest message has waited {age:.0f} s (more than {max_backlog_age:.0f} s)")
    return problems
