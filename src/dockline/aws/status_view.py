"""How ``dockline status --aws`` looks on a terminal (or piped: the same lines).

Queue URLs and notes can hold user-chosen names: they reach rich only as literal text.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from dockline.aws.status import WINDOWS, AwsStatus, QueueDepth
from dockline.render import LiteralTable, literal


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def queue_line(label: str, depth: QueueDepth | None, *, with_age: bool) -> str:
    if depth is None:
        return f"{label}: none (direct mode)" if with_age else f"{label}: none"
    line = f"{label}: {depth.waiting} waiting, {depth.in_flight} in flight"
    if depth.delayed:
        line += f", {depth.delayed} delayed"
    if with_age:
        line += f", the oldest for {_age(depth.oldest_age_seconds)}"
    return line


def states_line(status: AwsStatus) -> str:
    if status.states is None:
        return "files: not counted (--skip-scan)"
    return "files: " + ", ".join(f"{n} {state}" for state, n in status.states.items())


def scan_line(status: AwsStatus) -> str:
    return f"counted by a Scan: {status.scanned_items} items read, {status.read_units:g} read units"


def aws_status_view(status: AwsStatus) -> RenderableType:
    parts: list[RenderableType] = [
        Text(f"dockline status --aws: stack {status.stack} ({status.mode} mode)", style="bold"),
        literal(queue_line("input queue", status.queue, with_age=True)),
        literal(queue_line("dead letters", status.dead_letters, with_age=False)),
        literal(states_line(status)),
    ]
    if status.states is not None:
        parts.append(literal(scan_line(status), style="dim"))
    if status.metrics:
        table = LiteralTable(title="CloudWatch (sums)", title_justify="left")
        table.add_column("metric", no_wrap=True)
        for _, label in WINDOWS:
            table.add_column(label, justify="right", no_wrap=True)
        for name, sums in status.metrics.items():
            table.add_row(name, *(f"{sums.get(label, 0):g}" for _, label in WINDOWS))
        parts.append(table)
    parts.extend(literal(f"note: {note}", style="dim") for note in status.notes)
    parts.extend(literal(f"problem: {problem}", style="red") for problem in status.problems)
    return Group(*parts)
