"""``dockline try``: the whole chain on one file, with nothing written and nothing sent.

The file runs through the same ``Lifecycle`` and ``Pipeline`` as a real run, over a
memory bucket, a memory ledger and a topic that only keeps what it is given, so what
``try`` shows is what a run would do. Around that run, for a person writing a route:
the records the route's selector extracts (a display pass of the same decoder with the
record's own checks left out), each record's schema result, and each call of the
route's transform with what it returned or raised.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from dockline.config import PipelineSettings
from dockline.decode import RecordStream
from dockline.errors import DocklineError
from dockline.lifecycle import Lifecycle, Step, Work
from dockline.memory import MemoryDeadLetters, MemoryLedger, MemoryStore, MemoryTopic
from dockline.models import BadRecordPolicy, Notification, ObjectRef, Outcome
from dockline.pipeline import Pipeline
from dockline.routes import Miss, Route, nearest_miss
from dockline.selectors import DEFAULT_IDS
from dockline.transforms import Transform, TransformContext

TRY_BUCKET = "local"  # as the local engine names its bucket: the notification reads as a run's


@dataclass(frozen=True, slots=True)
class TransformCall:
    """One call of the route's transform: its input, and its output or its error."""

    index: int | None
    given: Any
    returned: list[dict[str, Any]] | None = None
    error: str | None = None


@dataclass(slots=True)
class Trial:
    """What one file would do. ``route`` None: no route takes ``key`` (``miss`` says why)."""

    key: str
    route: Route | None
    miss: Miss | None = None
    extracted: list[tuple[int | None, Any]] = field(default_factory=list)
    extract_bad: list[tuple[int, str]] = field(default_factory=list)
    extract_error: str | None = None
    validation: list[tuple[int | None, str | None]] = field(default_factory=list)
    calls: list[TransformCall] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    outcome: Outcome | None = None
    retry: str | None = None  # a transient error: a run would try the file again
    notifications: list[Notification] = field(default_factory=list)


class _Recording(Transform):
    """The route's transform, its every call noted for the trial."""

    def __init__(self, inner: Transform, calls: list[TransformCall]) -> None:
        super().__init__(inner.spec, inner.function)
        self._inner, self._calls = inner, calls

    def apply(self, record: dict[str, Any], ctx: TransformContext) -> list[dict[str, Any]] | None:
        try:
            returned = self._inner.apply(record, ctx)
        except DocklineError as exc:
            self._calls.append(TransformCall(ctx.index, record, error=str(exc)))
            raise
        self._calls.append(TransformCall(ctx.index, record, returned=returned))
        return returned


def try_file(
    data: bytes,
    *,
    key: str,
    settings: PipelineSettings,
    clock: Callable[[], datetime],
    event_time: str | None = None,
) -> Trial:
    """Run ``data`` as if it had landed under ``key``. Never writes or sends anything;
    never raises for what the file holds (that is the trial's result). ``event_time``:
    when the file was written, as a run's ``ObjectRef`` says (a transform's ``received_at``)."""
    route = settings.table.route_for(key)
    if route is None:
        return Trial(key, None, miss=nearest_miss(settings.table.routes, key))
    trial = Trial(key, route)
    _extract(trial, data, settings, route)
    calls: list[TransformCall] = []
    if route.transform is not None:  # only [[routes]] have transforms: the route is in settings.routes
        recorded = replace(route, transform=_Recording(route.transform, calls))
        settings = replace(settings, routes=tuple(recorded if r is route else r for r in settings.routes))
    # No waiting between attempts: a transient error is reported, not slept on.
    settings = replace(settings, retries=1)
    store, ledger, topic = MemoryStore(), MemoryLedger(), MemoryTopic()
    store.put(TRY_BUCKET, key, data)
    ref = ObjectRef(TRY_BUCKET, key, hashlib.sha256(data).hexdigest(), size=len(data), event_time=event_time)
    pipeline = Pipeline(
        settings=settings,
        store=store,
        ledger=ledger,
        notifier=topic,
        dead_letters=MemoryDeadLetters(),
        clock=clock,
    )
    result = Lifecycle(pipeline).run(Work(ref))
    trial.calls = calls
    trial.outcome = result.outcome
    if result.step is not Step.SETTLED:
        trial.retry = result.reason
    trial.items = [
        {"pk": pk, "route": stored.record.route, "index": stored.record.index, "payload": stored.record.payload}
        for pk, stored in ledger.items.items()
    ]
    trial.notifications = list(topic.messages)
    return trial


def _extract(trial: Trial, data: bytes, settings: PipelineSettings, route: Route) -> None:
    """The records the route's selector finds, before any per-record step (display only)."""
    bare = replace(route, schema=None, transform=None, ids=DEFAULT_IDS, on_bad_record=BadRecordPolicy.SKIP)
    stream = RecordStream(io.BytesIO(data), key=trial.key, settings=settings, route=bare)
    try:
        for record in stream.records():
            trial.extracted.append((record.index, record.payload))
    except DocklineError as exc:
        trial.extract_error = str(exc)
    trial.extract_bad = [(bad.index, bad.reason) for bad in stream.skipped]
    if route.schema is not None:
        trial.validation = [(index, route.schema.problem(payload)) for index, payload in trial.extracted]
