"""How ``dockline status`` looks: a screenful for a terminal, one line per refresh for a pipe.

Keys and reasons are user data: they reach rich only as literal text (render.literal,
LiteralTable), never as markup.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from dockline.local.progress import size_text
from dockline.local.status import StatusReport
from dockline.render import LiteralTable, literal, visible


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def bytes_of(done: int, size: int | None) -> str:
    """``42.0 MB / 70.0 MB`` (bytes read so far of the object's size)."""
    return size_text(done) + ("" if size is None else f" / {size_text(size)}")


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def states_line(report: StatusReport) -> str:
    return ", ".join(f"{n} {state}" for state, n in report.states.items())


def backlog_line(report: StatusReport) -> str:
    backlog = report.backlog
    if not backlog.files:
        return "backlog: none"
    return (
        f"backlog: {backlog.files} file{'s' if backlog.files != 1 else ''} waiting,"
        f" the oldest for {_age(backlog.oldest_age_seconds)}: {backlog.oldest_key}"
    )


def deliveries_line(report: StatusReport) -> str:
    return "deliveries: " + ", ".join(f"{n} {state}" for state, n in report.deliveries.items())


def last_error_line(report: StatusReport) -> str:
    error = report.last_error
    if error is None:
        return "last error: none"
    return f"last error: {error.key}: {error.reason} (at {error.at})"


def status_view(report: StatusReport) -> RenderableType:
    """The full picture, for a terminal (or a plain `dockline status` into a file)."""
    parts: list[RenderableType] = [
        Text(f"dockline status at {report.at}", style="bold"),
        literal("files: " + states_line(report)),
        literal(backlog_line(report), style="yellow" if report.backlog.files else ""),
    ]
    rates = LiteralTable(title="throughput (settled files)", title_justify="left")
    for name in ("window", "files", "files/s", "records", "records/s"):
        rates.add_column(name, justify="right", no_wrap=True)
    for rate in report.rates:
        rates.add_row(
            f"{rate.window_seconds // 60} min",
            str(rate.files),
            _rate(rate.files_per_second),
            str(rate.records),
            _rate(rate.records_per_second),
        )
    parts.append(rates)
    if report.in_flight:
        flying = LiteralTable(title=f"{len(report.in_flight)} in flight", title_justify="left")
        flying.add_column("key", overflow="fold", min_width=16)
        for name in ("records", "bytes", "since"):
            flying.add_column(name, justify="right", no_wrap=True)
        for f in report.in_flight:
            flying.add_row(f.key, f"{f.records:,}", bytes_of(f.bytes_done, f.size), f.started_at)
        parts.append(flying)
    else:
        parts.append(Text("in flight: none"))
    parts.append(literal(deliveries_line(report), style="red" if report.deliveries.get("failed") else ""))
    parts.append(literal(f"dead letters: {report.dead_letters}", style="red" if report.dead_letters else ""))
    parts.append(literal(last_error_line(report), style="red" if report.last_error else ""))
    for problem in report.problems:
        parts.append(literal(f"problem: {problem}", style="bold red"))
    return Group(*parts)


def status_line(report: StatusReport) -> str:
    """One line per refresh, for ``--watch`` into a pipe or a log (escaped by the caller's ``say``)."""
    one = report.rates[0]
    flying = len(report.in_flight)
    records = sum(f.records for f in report.in_flight)
    return visible(
        f"{report.at} {states_line(report)}; backlog {report.backlog.files}"
        f" (oldest {_age(report.backlog.oldest_age_seconds)}); 1m {_rate(one.files_per_second)} files/s"
        f" {_rate(one.records_per_second)} records/s; in flight {flying} ({records} records);"
        f" deliveries {report.deliveries.get('retrying', 0) + report.deliveries.get('pending', 0)} waiting"
        f" {report.deliveries.get('failed', 0)} failed; dead letters {report.dead_letters}"
    )
