"""Reprocess settled object versions: which ones, and what to do with each -- for every engine.

After ``csv_schema``, ``on_bad_record`` or a transform changed, files already settled can be
run again. A version runs again only when its bytes are still there, unchanged: the new run
then *replaces* what the old one wrote (same bytes, so no conflict), and removes what it no
longer writes (``ledger.judge`` and ``Ledger.reprocess`` hold the rule). A version whose
object is gone or changed is left alone, items and all, with one line saying why.

The order makes it crash-safe: every selected version is first reopened (pending again,
visibly unsettled), then run through the one lifecycle. A crash leaves reopened versions
that the next ``dockline run`` or ``dockline reprocess`` finishes, with the same items.

Plan, then execute: ``plan`` decides, so ``--dry-run`` changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dockline.errors import UsageError
from dockline.models import ObjectRef, Status

SETTLED = (Status.PROCESSED, Status.FAILED, Status.DUPLICATE, Status.CONFLICT, Status.SUPERSEDED)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which settled versions to run again. ``key_prefix``, ``statuses`` and ``routes``
    combine (all must match); ``everything`` takes every settled version. A version's route
    is the one that takes its key today (the engine passes it to ``matches``)."""

    key_prefix: str | None = None
    statuses: tuple[Status, ...] = ()
    everything: bool = False
    routes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Raises UsageError for an empty selection, ``everything`` with a filter, or a status
        that is not a settled one."""
        filtered = self.key_prefix is not None or bool(self.statuses) or bool(self.routes)
        if self.everything and filtered:
            raise UsageError("--all takes every settled file: leave out --key, --status and --route")
        if not self.everything and not filtered:
            raise UsageError("say which files to reprocess: --key PREFIX, --status S, --route R or --all")
        wrong = [str(s) for s in self.statuses if s not in SETTLED]
        if wrong:
            names = ", ".join(str(s) for s in SETTLED)
            raise UsageError(f"--status {wrong[0]}: only settled files are reprocessed ({names})")

    def matches(self, key: str, status: Status, route: str | None = None) -> bool:
        if self.key_prefix is not None and not key.startswith(self.key_prefix):
            return False
        if self.routes and route not in self.routes:
            return False
        # A version a crashed reprocess left reopened is taken whatever it was before.
        return not self.statuses or status in self.statuses or not status.is_final


@dataclass(frozen=True, slots=True)
class Candidate:
    """A version as the ledger has it: settled, or reopened by a reprocess that did not finish."""

    ref: ObjectRef
    status: Status
    records: int = 0

    @property
    def resumed(self) -> bool:
        return not self.status.is_final


@dataclass(frozen=True, slots=True)
class Step:
    """What reprocessing one candidate does. ``ref`` (the object as the store has it now) is
    None when it is left alone; ``why`` then says why, in one line."""

    candidate: Candidate
    ref: ObjectRef | None
    why: str = ""

    @property
    def action(self) -> str:
        if self.ref is None:
            return f"skip: {self.why}"
        return "resume (a reprocess was cut short)" if self.candidate.resumed else "reprocess"


# The object of a version's key as the store has it now; None when it is gone.
Locate = Callable[[ObjectRef], ObjectRef | None]


def plan(
    candidates: Iterable[Candidate], selection: Selection, locate: Locate, route_of: Callable[[str], str] | None = None
) -> list[Step]:
    """One step per selected candidate, in the order given; ``route_of`` names the route
    that takes a key (needed for a selection by route). Raises what ``locate`` raises
    (TransientError)."""
    steps: list[Step] = []
    for candidate in candidates:
        route = route_of(candidate.ref.key) if route_of is not None else None
        if not selection.matches(candidate.ref.key, candidate.status, route):
            continue
        now = locate(candidate.ref)
        if now is None:
            steps.append(Step(candidate, None, "its object is gone from the bucket; its items stay"))
        elif now.version != candidate.ref.version:
            why = f"its object changed since (now {now.version[:12]}); its items stay"
            steps.append(Step(candidate, None, why))
        else:
            steps.append(Step(candidate, now))
    return steps
