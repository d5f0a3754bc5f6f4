"""A corpus of small files (issue 11, small files) and what the decoder makes of each, as a
script that runs against any tree of the code:

    git archive ec816e1 src | tar -x -C /tmp/orig-smallfast
    PYTHONPATH=/tmp/orig-smallfast/src python tests/unit/small_corpus.py --write

writes ``small_items_ec816e1.json``: per file and per way in (the scan's hand-over: bytes in
hand with their hash; a plain stream, as S3 and a re-read give), a digest of each record's pk,
place, size, canonical text, route and content hash, or of the file's error, with the file's
hash, size and whether it is multi; besides, digests of the canonical dumps of a few thousand
random values, a hundred to a digest. ``test_small_fast.py`` holds today's code to it, byte for
byte. Without ``--write`` the script prints what it made in full, to compare two trees by eye.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import sys
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).with_name("small_items_ec816e1.json")

# Numbers: safe for a double, integral floats (the text fix), and ones only a Decimal holds.
NUMBERS = (
    "0 -0 -0.0 0.0 0.1 0.10 12.0 -12.0 26.00 1.10 1e2 2.5E+3 1.5e-7 0.001 1e15 1e16 3.0e1 149.0 -149.0"
    " 999999999999999 999999999999999.0 123456789012345.0 1e400 -1E+400 1e-400 0.30000000000000004"
    " 9007199254740993 1234567890123456.5 5e-324 9223372036854775808 -9223372036854775809 100.0e-2"
)
TEXTS = [
    '"plain"',
    '"é ü 😀 漢字"',
    '"\\u00e9\\ud83d\\ude00"',
    '"tab\\tnew\\nline\\u0000nul"',
    '"looks like a float 1.0, and -0.0} and 2.0]"',
    '"quote \\" then 3.0, then \\\\"',
    '"\\\\"',
    '":-0.0,"',
    '"\\u2028\\u2029"',
    '""',
]


def _value(rng: random.Random, depth: int = 0) -> str:
    pick = rng.random()
    if pick < 0.45:
        return rng.choice(NUMBERS.split())
    if pick < 0.7 or depth > 2:
        return rng.choice([*TEXTS, "true", "false", "null"])
    if pick < 0.85:
        return "[" + ",".join(_value(rng, depth + 1) for _ in range(rng.randrange(4))) + "]"
    keys = ["a", "b.0", "c", "1.0", "é", "z"]
    members = {rng.choice(keys): _value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return "{" + ",".join(f'"{k}":{v}' for k, v in members.items()) + "}"


def _order(rng: random.Random, i: int) -> bytes:
    """The benchmark's order file (``bench/run.py``'s ``make_orders``): prices as decimals,
    some of them integral (149.0)."""
    items = [
        {
            "sku": f"SKU-{rng.randrange(10_000):05d}",
            "qty": rng.randrange(1, 5),
            "price": round(rng.uniform(1, 200), 2) if i % 3 else float(rng.randrange(1, 200)),
            "name": f"item {rng.randrange(1000)}",
        }
        for _ in range(14)
    ]
    doc = {"id": f"order-{i:06d}", "currency": "EUR", "items": items, "total": round(rng.uniform(10, 2000), 2)}
    return json.dumps(doc, separators=(",", ":")).encode()


def corpus() -> dict[str, bytes]:
    rng = random.Random(13)
    files: dict[str, bytes] = {}
    for i in range(60):
        files[f"orders/order-{i:03d}.json"] = _order(rng, i)
    for i in range(300):
        members = ",".join(f'"f{n}":{_value(rng)}' for n in range(rng.randrange(1, 8)))
        rid = rng.choice([f'"r-{i}"', str(i), None, '"dockline#x"', '"  "', "1.5", '"' + "é" * 600 + '"'])
        body = members if rid is None else f'"id":{rid}' + ("," + members if members else "")
        files[f"random/doc-{i:03d}.json"] = ("{" + body + "}").encode()
    odd = {
        "empty.json": b"",
        "blank.json": b" \n\t ",
        "truncated.json": b'{"id":"t","a":[1,2',
        "trailing.json": b'{"id":"t"} {"id":"u"}',
        "not-utf8.json": b'{"id":"\xff"}',
        "binary.json": b"\x00\x01\x02{",
        "bom.json": b'\xef\xbb\xbf{"id":"bom","v":1.0}',
        "array.json": b"[1.0, 2.0]",
        "string.json": b'"text"',
        "number.json": b"26.0",
        "null.json": b"null",
        "nan.json": b'{"id":"n","v":NaN}',
        "deep.json": b'{"id":"deep","v":' + b"[" * 5000 + b"]" * 5000 + b"}",
        "big-int.json": b'{"id":"b","v":' + b"9" * 5000 + b"}",
        "crlf.json": b'{"id":"crlf",\r\n"v":12.0}\r\n',
        "spaces.json": b'  { "id" : "sp" , "v" : [ 1.0 , -0.0 , 0.5 ] }  \n',
        "lines.jsonl": b'{"id":"l1","v":1.0}\n{"id":"l2"}\n',
        "rows.csv": b"id,v\nc1,1.0\nc2,x\n",
        "packed.json.gz": gzip.compress(b'{"id":"gz","v":2.0}', mtime=0),
    }
    files.update({f"odd/{name}": data for name, data in odd.items()})
    return files


def values() -> list[Any]:
    """Random values for ``jsonx.dumps`` itself (floats, Decimals, tricky strings, indent)."""
    from decimal import Decimal

    rng = random.Random(17)
    pool: list[Any] = [
        26.0, -0.0, 0.0, 1e15, 9999999999999998.0, 1e16, -1e16, 1e22, 5e-324, 0.1, 149.0, -149.0,
        Decimal("12.0"), Decimal("26.00"), Decimal("1E+400"), Decimal("0.1"), Decimal("-0"), Decimal("1.10"),
        2**64, -(2**70), 7, True, None, "1.0,", "-0.0]", 'a"2.0,', "back\\slash 3.0}", "é 4.0\n", "\u2028",
    ]  # fmt: skip

    def one(depth: int) -> Any:
        pick = rng.random()
        if pick < 0.55 or depth > 2:
            return rng.choice(pool)
        if pick < 0.75:
            return [one(depth + 1) for _ in range(rng.randrange(4))]
        return {rng.choice(["a", "1.0", "b", "é", "-0.0"]): one(depth + 1) for _ in range(rng.randrange(4))}

    return [one(0) for _ in range(3000)]


def decoded() -> dict[str, Any]:
    """What the decoder at hand makes of the corpus, each way in, and of ``values()``."""
    from dataclasses import replace

    from dockline.config import PipelineSettings
    from dockline.decode import HashedBytes, RecordStream
    from dockline.jsonx import dumps
    from dockline.models import ObjectRef

    variants = {
        "default": PipelineSettings(),
        "small limits": replace(PipelineSettings(), max_inline_bytes=200, max_object_bytes=700),
    }
    made: dict[str, Any] = {}
    for variant, settings in variants.items():
        for key, data in corpus().items():
            digest = hashlib.sha256(data).hexdigest()
            for way in ("handed over", "streamed"):
                body: Any = HashedBytes(data, sha256=digest) if way == "handed over" else io.BytesIO(data)
                ref = ObjectRef("bucket", key, digest)
                stream = RecordStream(body, key=key, settings=settings, expected_sha256=digest, ref=ref)
                try:
                    records: Any = [
                        [r.pk, r.index, r.payload_bytes, r.canonical, r.content_hash, r.oversized, r.route]
                        for r in stream.records()
                    ]
                except Exception as exc:  # the error is part of what is compared
                    records = f"{type(exc).__name__}: {exc}"
                made[f"{variant} | {way} | {key}"] = {
                    "records": records,
                    "sha256": stream.sha256,
                    # After a failure the bytes counted so far are seen by no one (the old
                    # reader stopped at a chunk's end, the whole-document path has them all).
                    "size": stream.size if isinstance(records, list) else None,
                    "multi": stream.multi,
                    "skipped_total": stream.skipped_total,
                }
    texts = []
    for value in values():
        for indent in (False, True):
            try:
                texts.append(dumps(value, indent=indent).decode())
            except Exception as exc:  # the error is part of what is compared
                texts.append(f"{type(exc).__name__}: {exc}")
    made["dumps"] = texts
    return made


def digested(made: dict[str, Any]) -> dict[str, str]:
    """``decoded()`` in a few bytes an entry: a digest of each file's entry, and of each
    hundred dumps (the golden file stays small; a difference still names its file)."""

    def digest(value: Any) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:20]

    out = {name: digest(entry) for name, entry in made.items() if name != "dumps"}
    texts = made["dumps"]
    out.update({f"dumps {i:04d}": digest(texts[i : i + 100]) for i in range(0, len(texts), 100)})
    return out


if __name__ == "__main__":
    result = decoded()
    if sys.argv[1:] == ["--write"]:
        GOLDEN.write_text(json.dumps(digested(result), sort_keys=True, indent=0) + "\n")
    else:
        json.dump(result, sys.stdout, sort_keys=True)
