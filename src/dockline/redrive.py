"""Redrive dead letters: plan, then execute -- once, for every engine.

A letter names an object version that failed. Redriving processes the object *as it is
now*: if it was fixed (re-uploaded under the same key) the new version is processed;
if it is unchanged, its ``failed`` state is reopened first so the version can settle
anew. An engine supplies how to find an object's current version (``locate``) and what
to do with a resolved letter (delete a row, delete an SQS message); the rest is here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from dockline.errors import DocklineError, UsageError
from dockline.lifecycle import Lifecycle, Step, Work
from dockline.models import DeadLetter, ObjectRef, Outcome, Status

# The current version of a letter's object, or None and why it cannot be redriven.
Locate = Callable[[DeadLetter], tuple[ObjectRef | None, str]]


@dataclass(frozen=True, slots=True)
class RedriveStep:
    """What redriving one letter will do. ``ref`` is None when it cannot be redriven."""

    letter: DeadLetter
    ref: ObjectRef | None
    action: str

    @property
    def same_version(self) -> bool:
        return self.ref is not None and self.ref.version == self.letter.ref.version


@dataclass(frozen=True, slots=True)
class Redriven:
    step: RedriveStep
    outcome: Outcome | None
    note: str  # why nothing settled, one line ("" when it did)
    resolved: bool  # the letter has done its job: remove it


_CANDIDATES_SHOWN = 3


def select(letters: Sequence[DeadLetter], ids: Sequence[str] | None) -> list[DeadLetter]:
    """The letters named by ``ids`` (all when None), each once, in the order named.

    A name is a letter's full id, or what resolves to exactly one letter: a prefix of its
    id, its object's key, or a prefix of ``key@version`` (the id without the bucket).
    Raises UsageError for a name that matches no letter, or more than one (naming a few).
    """
    if ids is None:
        return list(letters)
    chosen: dict[str, DeadLetter] = {}
    for name in ids:
        letter = resolve(letters, name)
        chosen.setdefault(letter.id, letter)
    return list(chosen.values())


def resolve(letters: Sequence[DeadLetter], name: str) -> DeadLetter:
    """The one letter ``name`` stands for (see ``select``). Raises UsageError."""
    exact = [letter for letter in letters if letter.id == name]
    matches = exact or ([letter for letter in letters if _names(letter, name)] if name else [])
    if not matches:
        raise UsageError(f"no dead letter with id {name!r} (see `dockline dlq list`)")
    if len(matches) > 1:
        shown = ", ".join(short_id(letter) for letter in matches[:_CANDIDATES_SHOWN])
        more = f" and {len(matches) - _CANDIDATES_SHOWN} more" if len(matches) > _CANDIDATES_SHOWN else ""
        raise UsageError(f"{name!r} names {len(matches)} dead letters: {shown}{more}; give more of the id")
    return matches[0]


def _names(letter: DeadLetter, name: str) -> bool:
    key = letter.ref.key
    return letter.id.startswith(name) or (bool(key) and (key == name or f"{key}@{letter.ref.version}".startswith(name)))


def short_id(letter: DeadLetter) -> str:
    """A shorter name for ``letter`` that ``resolve`` accepts: ``key@<12 hex>`` when it has a
    key (a local letter), else its id (an SQS message id)."""
    key, version = letter.ref.key, letter.ref.version
    return f"{key}@{version[:12]}" if key and version else letter.id


def plan(letters: Sequence[DeadLetter], ids: Sequence[str] | None, locate: Locate) -> list[RedriveStep]:
    """One step per selected letter. Raises UsageError, TransientError (from ``locate``)."""
    steps: list[RedriveStep] = []
    for letter in select(letters, ids):
        ref, why = locate(letter)
        if ref is None:
            steps.append(RedriveStep(letter, None, f"skip: {why}"))
        elif ref.version == letter.ref.version:
            steps.append(RedriveStep(letter, ref, "reprocess (unchanged)"))
        else:
            steps.append(RedriveStep(letter, ref, "process the new version"))
    return steps


def execute(steps: Sequence[RedriveStep], lifecycle: Lifecycle, *, now: Callable[[], str]) -> Iterator[Redriven]:
    """Carry out ``steps``, one result each. A letter is resolved when its object settled
    other than failed, or when a newer version failed and got a letter of its own.
    Never raises for one step's trouble: that is the step's note."""
    pipeline = lifecycle.pipeline
    for step in steps:
        if step.ref is None:
            yield Redriven(step, None, "", resolved=False)
            continue
        attempt = 1
        if step.same_version:
            try:
                pipeline.ledger.reopen(step.ref, now=now())
            except DocklineError as exc:
                yield Redriven(step, None, str(exc), resolved=False)
                continue
            attempt = step.letter.attempts + 1  # the same version again: count the attempts
        result = lifecycle.run(Work(step.ref, attempt))  # out of retries: the letter stays
        outcome = result.outcome if result.step is Step.SETTLED else None
        resolved = outcome is not None and (
            outcome.status is not Status.FAILED or (not step.same_version and pipeline.dead_letters is not None)
        )
        yield Redriven(step, outcome, result.reason, resolved)
