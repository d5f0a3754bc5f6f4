"""Issue 9, Speed: the faster schema check and transform path write the same items, byte
for byte, as the code before them (main at 2fc66db) for the same input.

``steps_items_2fc66db.json`` holds what 2fc66db made of ``corpus()`` on each route; it was
written by running this file as a script against that code:

    git archive 2fc66db src | tar -x -C /tmp/orig
    PYTHONPATH=/tmp/orig/src python tests/unit/test_items_unchanged.py --write
"""

from __future__ import annotations

import io
import itertools
import json
import random
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from dockline.jsonx import fast_path_safe

GOLDEN = Path(__file__).with_name("steps_items_2fc66db.json")
NUMBERS = (
    "0 -0 -0.0 0.1 0.10 26.0 26 1e400 -1E+400 1e-400 0.30000000000000004 123456789012345678901234567890"
    " -98765432109876543210 9007199254740993 1e16 1.5e-7 0.001 0.0001 12.34 -12.340 999999999999999.9"
    " 1234567890123456.5 5e-324 2.5E+3"
)
SCHEMA = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "pattern": "^r-"},
        "n": {"type": "number", "minimum": -1e30, "maximum": 1e30},
        "q": {"type": "integer", "minimum": 0},
        "p": {"type": "number", "multipleOf": 0.01},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    },
}
TRANSFORMS = """
def same(record, ctx):
    return record

def priced(record, ctx):
    if record.get("drop"):
        return None
    q, p = record.get("q"), record.get("p")
    out = dict(record)
    if isinstance(q, int) and not isinstance(q, bool) and p is not None and not isinstance(p, (str, list, bool)):
        out["total"] = q * p
    out["line"] = ctx.index
    return out
"""
ROUTES = {
    "plain": "",
    "schema": 'schema = "schema.json"\n',
    "same": 'transform = "stepspeed_corpus:same"\n',
    "priced": 'transform = "stepspeed_corpus:priced"\n',
    "both": 'schema = "schema.json"\ntransform = "stepspeed_corpus:priced"\n',
}


def corpus(*, short: bool = False) -> bytes:
    """JSON Lines with the numbers that test exactness, good and bad records, a few bad lines.
    ``short``: only numbers of at most 15 digits, so the whole file takes the fast parser."""
    rng = random.Random(9)
    numbers = [n for n in NUMBERS.split() if not short or (sum(c.isdigit() for c in n) <= 15 and "e-" not in n)]
    lines = []
    for i in range(600):
        n = rng.choice(numbers)
        p = rng.choice(["19.99", "0.1", "0.3", "0.015", "1e2", "-0", "3"])
        q = rng.choice(["1", "2", "-1", "2.0", "1e400", "12345678901234567890123"][: 4 if short else 6])
        tags = rng.choice(['["a","b"]', '["a","a"]', "[]", '["x",1]'])
        rid = rng.choice([f'"r-{i}"', f'"x-{i}"', f'"r-{i}"', "7"])
        extra = rng.choice(["", ',"drop":true', ',"nested":{"v":[' + n + "," + p + "]}", ""])
        lines.append(f'{{"id":{rid},"n":{n},"q":{q},"p":{p},"tags":{tags}{extra}}}')
        if i % 97 == 0:
            lines.append(rng.choice(["{bad json", "[1,2]", '{"id":"r-x","n":1e99999}', ""]))
    return ("\n".join(lines) + "\n").encode()


def items(folder: Path) -> dict[str, Any]:
    """What each route makes of ``corpus()``: every record's pk, place and canonical text,
    the skipped lines and their reasons, and how many the transform dropped."""
    from dockline.config import parse_settings
    from dockline.decode import RecordStream

    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    (folder / "stepspeed_corpus.py").write_text(TRANSFORMS)
    made: dict[str, Any] = {}
    for (name, extra), short in itertools.product(ROUTES.items(), (False, True)):
        data = corpus(short=short)
        text = f'[[routes]]\nname = "r"\nprefix = "in/"\nsuffixes = [".jsonl"]\non_bad_record = "skip"\n{extra}'
        settings = parse_settings(tomllib.loads(text), source=folder / "dockline.toml").pipeline
        stream = RecordStream(io.BytesIO(data), key="in/corpus.jsonl", settings=settings)
        records = [[r.pk, r.index, r.oversized, r.payload_bytes, r.canonical, r.route] for r in stream.records()]
        skipped = [[b.index, b.reason] for b in stream.skipped]
        made[f"{name}, short numbers" if short else name] = {
            "records": records,
            "skipped": skipped,
            "bad": stream.skipped_total,
            "dropped": stream.dropped,
        }
    return made


def test_speed_items_are_byte_identical_to_2fc66db(tmp_path: Path) -> None:
    # GIVEN the corpus and what the code before the speed work made of it on each route
    expected = json.loads(GOLDEN.read_text())
    # WHEN today's code decodes it  THEN every record, reason and count is the same
    made = items(tmp_path)
    assert made.keys() == expected.keys()
    for name in made:
        assert made[name]["records"] == expected[name]["records"], name
        assert made[name]["skipped"] == expected[name]["skipped"], name
        assert made[name]["bad"] == expected[name]["bad"], name
        assert made[name]["dropped"] == expected[name]["dropped"], name
    # and the corpus did exercise each path: records kept, records skipped, records dropped,
    # the fast parser and the exact one
    assert fast_path_safe(corpus(short=True)) and not fast_path_safe(corpus())
    assert all(made[name]["records"] and made[name]["skipped"] for name in made)
    assert made["priced"]["dropped"] > 0


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    with tempfile.TemporaryDirectory() as folder:
        GOLDEN.write_text(json.dumps(items(Path(folder)), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {GOLDEN}")
