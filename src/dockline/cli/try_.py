"""dockline try: a dry run of the whole chain on one file (``dockline.trial``)."""

from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import typer

from dockline.cli.app import app, console, context_of, print_json
from dockline.errors import UsageError
from dockline.jsonx import dumps
from dockline.render import say

_SHOWN = 20  # records per section in the text form; --json shows all
_WIDTH = 160


@app.command("try")
def try_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The file to try (read only; nothing is written or sent).")],
    key: Annotated[
        str | None,
        typer.Option("--key", help="Its key in the bucket (default: the end of FILE's path that a route takes)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Everything, as one JSON object (exact numbers).")] = False,
) -> None:
    """Dry-run one file: route, records, validation, transform output, items, notification."""
    from dockline.local.store import event_time
    from dockline.trial import try_file

    try:
        data = file.read_bytes()
        written = event_time(file.stat().st_mtime_ns)  # as the local engine's ref says
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    settings = context_of(ctx).settings().pipeline
    chosen = key if key is not None else _key_of(file, settings.table.matches)
    trial = try_file(data, key=chosen, settings=settings, clock=lambda: datetime.now(UTC), event_time=written)
    shown = _as_json(trial)
    if as_json:
        print_json(shown)
    else:
        _print(shown, from_path=key is None)
    would_settle = trial.outcome is not None and str(trial.outcome.status) in ("processed", "duplicate")
    if not would_settle:
        raise typer.Exit(1)


def _key_of(file: Path, matches: Any) -> str:
    """The longest end of ``file``'s path that a route takes (``examples/shop/incoming/a.json``
    -> ``incoming/a.json``), else the path as given."""
    parts = PurePosixPath(file.as_posix()).parts
    parts = tuple(p for p in parts if p not in ("/", "."))
    for start in range(len(parts)):
        candidate = "/".join(parts[start:])
        if ".." not in parts[start:] and matches(candidate):
            return candidate
    return "/".join(parts)


def _as_json(trial: Any) -> dict[str, Any]:
    route = trial.route
    outcome = trial.outcome
    return {
        "key": trial.key,
        "route": route.name if route is not None else None,
        "no_route": (
            {"nearest": trial.miss.route, "why": trial.miss.why, "detail": trial.miss.detail}
            if trial.miss is not None
            else None
        ),
        "extracted": [{"index": i, "record": r} for i, r in trial.extracted],
        "extract_error": trial.extract_error,
        "unreadable_records": [{"index": i, "reason": r} for i, r in trial.extract_bad],
        "schema": route.schema.source if route is not None and route.schema is not None else None,
        "validation": [{"index": i, "problem": p} for i, p in trial.validation],
        "transform": route.transform.spec if route is not None and route.transform is not None else None,
        "transform_calls": [
            {"index": c.index, "input": c.given, "output": c.returned, "error": c.error} for c in trial.calls
        ],
        "items": trial.items,
        "outcome": None
        if outcome is None
        else {
            "status": str(outcome.status),
            "error": outcome.error,
            "pk": outcome.pk,
            "records": outcome.records,
            "dropped": outcome.dropped,
            "skipped_total": outcome.skipped_total,
            "skipped": [{"index": b.index, "reason": b.reason} for b in outcome.skipped],
        },
        "retry": trial.retry,
        "notifications": [
            {"subject": n.subject, "message": n.message, "attributes": dict(n.attributes)} for n in trial.notifications
        ],
    }


def _cut(text: str) -> str:
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def _json_text(value: Any) -> str:
    return "(too big to store inline: kept as a reference)" if value is None else dumps(value).decode()


def _place(index: int | None) -> str:
    return "document" if index is None else f"#{index}"


def _section(title: str, rows: list[str]) -> None:
    say(console, title)
    for row in rows[:_SHOWN]:
        say(console, "  " + _cut(row))
    if len(rows) > _SHOWN:
        say(console, f"  ... and {len(rows) - _SHOWN} more (--json shows all)")


def _print(shown: dict[str, Any], *, from_path: bool) -> None:
    say(console, f"key: {shown['key']}" + (" (from the file's path; --key to choose)" if from_path else ""))
    if shown["route"] is None:
        miss = shown["no_route"]
        if miss is None:
            say(console, "route: none (no routes configured)")
        else:
            say(console, f"route: none matched; nearest {miss['nearest']!r} ({miss['why']}): {miss['detail']}")
        say(console, "nothing would be processed; nothing was written or sent")
        return
    say(console, f"route: {shown['route']}")
    if shown["extract_error"]:
        say(console, f"records: cannot be read: {shown['extract_error']}")
    _section(
        f"records extracted: {len(shown['extracted'])}",
        [f"{_place(r['index'])}: {_json_text(r['record'])}" for r in shown["extracted"]]
        + [f"#{b['index']}: unreadable: {b['reason']}" for b in shown["unreadable_records"]],
    )
    if shown["schema"]:
        problems = [v for v in shown["validation"] if v["problem"]]
        _section(
            f"validation against {shown['schema']}: {len(shown['validation']) - len(problems)} ok, {len(problems)} not",
            [f"{_place(v['index'])}: {v['problem']}" for v in problems],
        )
    if shown["transform"]:
        rows = []
        for call in shown["transform_calls"]:
            if call["error"]:
                result = f"bad record: {call['error']}"
            elif call["output"] is None:
                result = "dropped (returned None)"
            else:
                result = " | ".join(_json_text(o) for o in call["output"])
            rows.append(f"{_place(call['index'])} -> {result}")
        _section(f"transform {shown['transform']}: {len(rows)} calls", rows)
    _section(
        f"items that would be written: {len(shown['items'])}",
        [f"pk {i['pk']} ({_place(i['index'])}): {_json_text(i['payload'])}" for i in shown["items"]],
    )
    outcome = shown["outcome"]
    if shown["retry"]:
        say(console, f"result: not settled, a run would retry it: {shown['retry']}")
    elif outcome is not None:
        line = f"result: {outcome['status']}"
        if outcome["error"]:
            line += f": {outcome['error']}"
        line += f" ({outcome['records']} records"
        if outcome["dropped"]:
            line += f", {outcome['dropped']} dropped by the transform"
        if outcome["skipped_total"]:
            line += f", {outcome['skipped_total']} bad records skipped"
        say(console, line + ")")
        for bad in outcome["skipped"][:_SHOWN]:
            say(console, _cut(f"  skipped #{bad['index']}: {bad['reason']}"))
    for note in shown["notifications"]:
        say(console, "notification that would be sent:")
        say(console, f"  subject: {note['subject']}")
        say(console, _cut(f"  message: {note['message']}"))
        say(console, _cut("  attributes: " + ", ".join(f"{k}={v}" for k, v in note["attributes"].items())))
    say(console, "nothing was written or sent")
