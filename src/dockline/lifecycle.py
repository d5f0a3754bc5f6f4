"""One lifecycle for every engine: a work item in, one of three results out.

- **settled**: the object version has its final state (an Outcome); acknowledge it.
- **retry**: nothing final yet, or only the notification is owed; leave it for a later
  attempt (the local engine's next run, SQS's next receive, Lambda's retry).
- **busy**: another worker holds it right now; leave it to that worker.

The lifecycle owns the decisions every engine used to make on its own: when to give up
(and settle as failed, with a dead letter), never to give up on a file whose state is
already recorded (its outbox sends the notification later), and that a bug in one file
never stops the others. An engine only maps the three results to its way of
acknowledging: a count and a line (local), ``batchItemFailures`` or a raised error
(Lambda). ``run_batch`` takes many small files at once (``dockline.batch``) and gives each
the result ``run`` would: the same mapping of errors to results serves both (``_run``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from dockline.batch import Resume, process_batch
from dockline.errors import BusyError, DocklineError, OutboxPendingError, PermanentError, TransientError
from dockline.models import ObjectRef, Outcome
from dockline.pipeline import Pipeline
from dockline.ports import Unclaimed

log = logging.getLogger("dockline.lifecycle")


class Step(StrEnum):
    SETTLED = "settled"
    RETRY = "retry"
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class Work:
    """One object version to process. ``attempt`` counts deliveries of it so far (this
    one included). ``give_up_after``: when this attempt runs out of retries, settle the
    file as failed saying it gave up after that many attempts; None: hand it back."""

    ref: ObjectRef
    attempt: int = 1
    give_up_after: int | None = None


@dataclass(frozen=True, slots=True)
class Result:
    work: Work
    step: Step
    outcome: Outcome | None = None
    reason: str = ""  # why it is retried or busy: one line
    unexpected: bool = False  # the reason is a bug or an unexpected library error


class Lifecycle:
    """Runs work items through the pipeline. Thread-safe if the pipeline is."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def run(self, work: Work) -> Result:
        """Never raises (but for KeyboardInterrupt and SystemExit): every failure is a result."""
        return self._run(work, lambda: self.pipeline.process(work.ref, attempt=work.attempt))

    def run_batch(self, works: Sequence[Work]) -> list[Result]:
        """``run`` for many small files at once (``dockline.batch``): a result per work item,
        in order, decided exactly as ``run`` decides it. Never raises (but as ``run``)."""
        try:
            steps = process_batch(self.pipeline, [w.ref for w in works], [w.attempt for w in works])
        except (TransientError, PermanentError):
            return [self.run(work) for work in works]  # the claim failed whole: each on its own
        except DocklineError as exc:  # the storage refused the claim: nothing is claimed
            return [self._run(work, partial(_raise, exc)) for work in works]
        except Exception:
            log.exception("internal error while claiming a batch of %d files", len(works))
            return [self.run(work) for work in works]
        results: list[Result] = []
        for work, step in zip(works, steps, strict=True):
            if isinstance(step, Outcome):
                results.append(Result(work, Step.SETTLED, step))
            elif isinstance(step, Unclaimed):
                results.append(self.run(work))
            elif isinstance(step, Resume):
                resume = partial(self.pipeline.resume, work.ref, step.prior, attempt=work.attempt)
                results.append(self._run(work, resume))
            else:
                results.append(self._run(work, partial(_raise, step)))
        return results

    def _run(self, work: Work, settle: Callable[[], Outcome]) -> Result:
        try:
            return Result(work, Step.SETTLED, settle())
        except BusyError as exc:
            return Result(work, Step.BUSY, reason=str(exc))
        except OutboxPendingError as exc:  # giving up now would turn a settled file into a failed one
            return Result(work, Step.RETRY, reason=str(exc))
        except TransientError as exc:
            if work.give_up_after is None:
                return Result(work, Step.RETRY, reason=str(exc))
            return self._give_up(work, str(exc))
        except DocklineError as exc:  # e.g. the ledger's storage refused: nothing settled
            return Result(work, Step.RETRY, reason=str(exc))
        except Exception as exc:  # a bug must not stop the other files
            log.exception("internal error while processing %s", work.ref.key)
            return Result(work, Step.RETRY, reason=f"internal error: {type(exc).__name__}: {exc}", unexpected=True)

    def _give_up(self, work: Work, reason: str) -> Result:
        assert work.give_up_after is not None
        try:
            outcome = self.pipeline.give_up(work.ref, reason, attempts=work.give_up_after)
        except OutboxPendingError as exc:
            return Result(work, Step.RETRY, reason=str(exc))
        except DocklineError as exc:
            return Result(work, Step.RETRY, reason=f"{reason}; giving up failed too: {exc}")
        except Exception as exc:
            log.exception("internal error while giving up on %s", work.ref.key)
            return Result(work, Step.RETRY, reason=f"internal error: {type(exc).__name__}: {exc}", unexpected=True)
        return Result(work, Step.SETTLED, outcome)


def _raise(exc: Exception) -> Outcome:
    raise exc
