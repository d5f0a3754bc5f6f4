"""A JSON Lines corpus for the big-file path (issue 11, NDJSON target), and what the decoder
makes of it, as a script that runs against any tree of the code:

    git archive 46f3795 src | tar -x -C /tmp/orig-ndjson
    PYTHONPATH=/tmp/orig-ndjson/src python tests/unit/ndjson_corpus.py --write

writes ``ndjson_items_46f3795.json``: per variant (policy, inline limit), a SHA-256 over every
record's pk, place, size, canonical text, route and content hash, and the skipped lines with their
reasons. ``test_ndjson_identical.py`` holds today's code to it.

The corpus is a few megabytes, so the decoder reads it in several of its one-megabyte blocks:
some blocks are clean (the block fast path), some hold numbers a double cannot hold exactly
(the exact parser), some hold bad, blank or unusual lines (line by line).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).with_name("ndjson_items_46f3795.json")
SEGMENT_BYTES = 1_100_000  # more than one block (1 MiB), so each kind fills a block of its own
# Numbers a double holds exactly (at most 15 digits, no tiny exponent), integral floats among them.
SAFE_NUMBERS = "0 -0 -0.0 0.1 0.10 26.0 26 -12.340 12.34 1e2 2.5E+3 1.5e-7 0.001 0.0001 999999999999999 1e15 1e16 3.0e1"
EXACT_NUMBERS = (
    "1e400 -1E+400 1e-400 0.30000000000000004 123456789012345678901234567890 -98765432109876543210"
    " 9007199254740993 1234567890123456.5 5e-324 9223372036854775808 -9223372036854775809"
)
TEXTS = [
    '"plain"',
    '"é ü 😀 漢字"',
    '"\\u00e9\\ud83d\\ude00"',
    '"tab\\tnew\\nline\\u0000nul"',
    '"looks like a float .0, and .0}"',
    '"],[ },{ ,\\u0000,"',
    '"\\u2028\\u2029"',
    '""',
]


def _value(rng: random.Random, numbers: list[str], depth: int = 0) -> str:
    pick = rng.random()
    if pick < 0.45:
        return rng.choice(numbers)
    if pick < 0.75 or depth > 1:
        return rng.choice([*TEXTS, "true", "false", "null"])
    if pick < 0.88:
        return "[" + ",".join(_value(rng, numbers, depth + 1) for _ in range(rng.randrange(4))) + "]"
    members = {f"k{rng.randrange(9)}": _value(rng, numbers, depth + 1) for _ in range(rng.randrange(4))}
    return "{" + ",".join(f'"{k}":{v}' for k, v in members.items()) + "}"


def _members(rng: random.Random, numbers: list[str]) -> list[tuple[str, str]]:
    members = {f"f{rng.randrange(30):02d}": _value(rng, numbers) for _ in range(rng.randrange(1, 7))}
    return list(members.items())


def _object(rng: random.Random, pool: list[list[tuple[str, str]]], rid: str | None) -> str:
    """An object from a few members drawn once (the pool: generating each line afresh would
    cost seconds), with the id at a random place, or none."""
    members = rng.choice(pool)
    if rid is not None:
        members = members.copy()
        members.insert(rng.randrange(len(members) + 1), ("id", rid))
    return "{" + ",".join(f'"{k}":{v}' for k, v in members) + "}"


def _segment(rng: random.Random, kind: str, start: int) -> list[str]:
    lines: list[str] = []
    size = 0
    safe = [_members(rng, SAFE_NUMBERS.split()) for _ in range(1000)]
    every = (SAFE_NUMBERS + " " + EXACT_NUMBERS).split()
    exact = [_members(rng, every) for _ in range(1000)] if kind == "exact" else []
    while size < SEGMENT_BYTES:
        i = start + len(lines)
        if kind == "clean":  # string ids, the benchmark's shape and richer ones
            line = _object(rng, safe, f'"r-{i}"')
        elif kind == "no-ids":  # no id at all: key#line
            line = _object(rng, safe, None)
        elif kind == "mixed-ids":  # ids that take the careful way: ints, missing, long, odd
            rid = rng.choice([f'"m-{i}"', str(i), None, f'"m-{i}"', '"' + "é" * 300 + f'{i}"', f'"x{i}"'])
            line = _object(rng, safe, rid)
        elif kind == "exact":  # numbers a double cannot hold exactly
            line = _object(rng, exact, f'"e-{i}"')
        else:  # "messy": bad, blank, repeated and unusual lines among good ones
            line = rng.choice(
                [
                    _object(rng, safe, f'"d-{i}"'),
                    _object(rng, safe, f'"d-{i % 50}"'),  # the same id again (duplicates)
                    _object(rng, safe, f'"d-{i}"') + "\r",  # CRLF
                    "",
                    "   ",
                    "{bad json",
                    '{"id":"t-1","n":1',  # truncated
                    "[1,2]",
                    "null",
                    '"a string"',
                    '{"id":"dockline#x"}',
                    '{"id":"  "}',
                    '{"id":""}',
                    '{"id":1.5}',
                    '{"id":null}',
                    '{"id":"n-1","v":NaN}',
                    '{"id":"z","a":1} {"b":2}',
                    '{"a":1},{"b":2}',
                    '\xff{"id":"bin"}',
                ]
            )
        lines.append(line)
        size += len(line.encode("utf-8", "surrogateescape")) + 1
    return lines


def corpus() -> bytes:
    rng = random.Random(11)
    lines: list[str] = []
    for kind in ("clean", "no-ids", "mixed-ids", "exact", "messy"):
        lines += _segment(rng, kind, len(lines) + 1)
    text = "\n".join(lines) + "\n"
    return text.encode("utf-8", "surrogateescape").replace(b"\xc3\xbf{", b"\xff{")


VARIANTS = {
    "skip": ('on_bad_record = "skip"\n', {}),
    "skip, small inline limit": ('on_bad_record = "skip"\n', {"max_inline_bytes": 150}),
    "fail_file": ("", {}),
}


def decoded(data: bytes) -> dict[str, Any]:
    """What the decoder at hand makes of ``data`` in each variant."""
    import tomllib
    from dataclasses import replace

    from dockline.config import parse_settings
    from dockline.decode import RecordStream
    from dockline.errors import PermanentError

    made: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (extra, changes) in VARIANTS.items():
            text = f'[[routes]]\nname = "r"\nprefix = "in/"\nsuffixes = [".ndjson"]\n{extra}'
            settings = parse_settings(tomllib.loads(text), source=Path(folder) / "dockline.toml").pipeline
            settings = replace(settings, **changes)
            stream = RecordStream(io.BytesIO(data), key="in/corpus.ndjson", settings=settings)
            digest = hashlib.sha256()
            count, error = 0, None
            try:
                for r in stream.records():
                    row = [r.pk, r.index, r.oversized, r.payload_bytes, r.canonical, r.route, r.content_hash]
                    digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
                    count += 1
            except PermanentError as exc:
                error = str(exc)
            made[name] = {
                "records": count,
                "records_sha256": digest.hexdigest(),
                "error": error,
                "skipped": [[b.index, b.reason] for b in stream.skipped],
                "skipped_total": stream.skipped_total,
                "sha256": stream.sha256 if error is None else None,
            }
    return made


if __name__ == "__main__":
    result = decoded(corpus())
    if sys.argv[1:] == ["--write"]:
        GOLDEN.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {GOLDEN}")
    else:
        print(json.dumps(result, ensure_ascii=False))
