"""``dockline demo``: the whole chain on bundled samples, in a fresh data dir."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import replace
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.text import Text

from dockline.config import LocalSettings, Settings
from dockline.errors import UsageError
from dockline.jsonx import dumps
from dockline.local.engine import LocalEngine
from dockline.local.queries import list_files, list_items
from dockline.render import LazyConsole, LiteralTable, literal, say

# (sample file, what it shows), put in this order
SAMPLES: tuple[tuple[str, str], ...] = (
    ("order-1001.json", "an order with prices (exact decimals)"),
    ("order-1002.json", "an integer id"),
    ("sensor-reading.json", "no id: the key becomes the pk"),
    ("readings.ndjson", "JSON Lines: one item per record"),
    ("broken-order.json", "malformed JSON"),
    ("order-1001-resent.json", "the same order again"),
    ("order-1001-edited.json", "the same id with other content"),
)


def run_demo(console: Console | LazyConsole, *, target: Path | None = None) -> Path:
    """Put the samples into a new data dir, run once, print the outcome. Returns the dir."""
    if target is not None:
        if target.exists() and any(target.iterdir()):
            raise UsageError(f"{target} is not empty; the demo needs a fresh folder")
        data_dir = target
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="dockline-demo-"))
    # put writes atomically, so there is no half-written file to wait for
    engine = LocalEngine(data_dir, replace(Settings(), local=LocalSettings(settle_seconds=0)))
    samples = resources.files("dockline") / "samples"
    console.print(Text.assemble(("dockline demo", "bold"), " - data dir: ", literal(str(data_dir)), "\n"))
    for name, why in SAMPLES:
        with resources.as_file(samples / name) as path:
            staged = engine.staging_dir / name
            engine.staging_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staged)
            engine.store.put(staged, f"incoming/{name}")
            staged.unlink()
        say(console, f"  put incoming/{name:<26} {why}")
    # One worker: the story needs order-1001 settled before its resent and edited copies
    # (several workers race, and the rows' outcomes could change from run to run).
    summary = engine.run_once(workers=1, max_wait_seconds=5)
    put_order = {f"incoming/{name}": n for n, (name, _) in enumerate(SAMPLES)}
    console.print()
    # Keys, pks and reasons are shown literally (LiteralTable); only the status is styled.
    table = LiteralTable(title="What happened to each file")
    table.add_column("file (under incoming/)", no_wrap=True, max_width=26, overflow="ellipsis")
    table.add_column("status", no_wrap=True)
    table.add_column("pk", no_wrap=True, max_width=16, overflow="ellipsis")
    table.add_column("detail", ratio=1)
    styles = {"processed": "green", "failed": "red", "duplicate": "cyan", "conflict": "yellow"}
    # Rows in the order the files were put (the ledger's own order is when they settled).
    for row in sorted(list_files(engine.db), key=lambda r: put_order.get(r["key"], len(put_order))):
        status = row["status"]
        detail = row["error"] or (f"{row['records']} records" if row["records"] > 1 else "")
        name = row["key"].removeprefix(engine.settings.pipeline.prefix)
        pk = row["pk"] or ""
        table.add_row(name, literal(status, style=styles.get(status, "white")), pk, detail)
    console.print(table)
    items = sorted(
        list_items(engine.db), key=lambda i: (put_order.get(i["key"], len(put_order)), i.get("record_index", 0))
    )
    ledger = LiteralTable(title=f"Ledger: {len(items)} items")
    ledger.add_column("pk", no_wrap=True, max_width=28, overflow="ellipsis")
    ledger.add_column("payload (numbers exact)", no_wrap=True, overflow="ellipsis", ratio=1)
    for item in items:
        ledger.add_row(item["pk"], dumps(item["payload"]).decode())
    console.print(ledger)
    messages = engine.topic.messages()
    console.print(
        f"{len(messages)} notifications published, {len(list(engine.dead_letters.list()))} dead letter(s); "
        f"settled in {summary.seconds * 1000:.0f} ms.\n"
    )
    say(console, "Explore it:")
    program = _program()
    for command in ("files list", "ledger list --json", "notifications list", "dlq list"):
        say(console, f"  {program} --data-dir {data_dir} {command}")
    return data_dir


def _program() -> str:
    """How to call dockline from here: on PATH, else the script beside this interpreter
    (e.g. .venv/bin/dockline after `make demo`), else ``python -m dockline``."""
    if shutil.which("dockline"):
        return "dockline"
    script = Path(sys.executable).parent / "dockline"
    if script.exists():
        relative = os.path.relpath(script)
        return relative if not relative.startswith("..") else str(script)
    return f"{sys.executable} -m dockline"
