"""Issue 11, NDJSON target: the faster big-file path makes the same records as the code before
it (main at 46f3795), byte for byte, for a corpus of clean, exact-number, messy and unusual
lines: the same pks, places, sizes, canonical texts and content hashes, the same bad lines
with the same reasons, the same error for a file that fails (``ndjson_corpus.py``)."""

from __future__ import annotations

import json

from tests.unit.ndjson_corpus import GOLDEN, corpus, decoded


def test_ndjson_items_are_byte_identical_to_46f3795() -> None:
    # GIVEN the corpus and what the code before the NDJSON work made of it, per variant
    expected = json.loads(GOLDEN.read_text())
    # WHEN today's code decodes it
    made = decoded(corpus())
    # THEN every record, bad line, reason, count and the file's hash are the same
    assert made.keys() == expected.keys()
    for name in made:
        assert made[name] == expected[name], name
    # and the corpus did exercise each path: records kept, bad lines skipped, a file failed
    assert expected["skip"]["records"] > 50_000 and expected["skip"]["skipped_total"] > 1_000
    assert expected["skip, small inline limit"]["records_sha256"] != expected["skip"]["records_sha256"]
    assert expected["fail_file"]["error"]
