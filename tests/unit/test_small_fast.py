"""Issue 11, small files: the cheaper per-file decode (a whole document in hand skips the
streaming reader; integral floats fixed in the text, not by walking the value) makes the same
records as the code before it (main at ec816e1), byte for byte (``small_corpus.py``)."""

from __future__ import annotations

import hashlib
import json

import pytest

from dockline import jsonx
from dockline.config import PipelineSettings
from dockline.decode import HashedBytes, RecordStream
from dockline.errors import SupersededError
from tests.unit.small_corpus import GOLDEN, corpus, decoded, digested, values


def test_small_files_items_are_byte_identical_to_ec816e1() -> None:
    # GIVEN the corpus and what the code before this work made of it, each way in
    expected = json.loads(GOLDEN.read_text())
    # WHEN today's code decodes it
    made = decoded()
    # THEN every record, canonical text, hash, error and count is the same
    digests = digested(made)
    assert digests.keys() == expected.keys()
    assert [name for name in digests if digests[name] != expected[name]] == []
    # and the corpus exercised each outcome: records kept, files failed, integral floats rewritten
    kinds = [v["records"] for k, v in made.items() if k != "dumps"]
    assert sum(isinstance(r, list) for r in kinds) > 300 and sum(isinstance(r, str) for r in kinds) > 100
    assert any('"price":149,' in r[0][3] for r in kinds if isinstance(r, list) and r)


def test_integral_floats_fixed_in_the_text_match_the_walk() -> None:
    # GIVEN random values with integral floats, -0.0, Decimals, big ints and strings that
    # look like numbers (".0," inside a string, a quote, a backslash)
    fixed_in_text = 0
    for value in values():
        for opts in (jsonx._ORJSON_OPTS, jsonx._ORJSON_OPTS | jsonx.orjson.OPT_INDENT_2):
            try:
                out = jsonx._dumps(value, opts)
            except jsonx.PermanentError:
                continue
            # WHEN the text fix applies, THEN it gives the walk's bytes
            fixed = jsonx._integral_fractions_dropped(out)
            if fixed is None:
                continue
            walked = jsonx._dumps(jsonx._integral_as_int(value), opts)
            assert fixed == walked, (value, out)
            fixed_in_text += fixed != out
    # and it did the work for many of them (not declined every time)
    assert fixed_in_text > 200


def test_whole_document_path_checks_the_version_and_the_limit() -> None:
    # GIVEN bytes in hand whose hash is not the version the pipeline meant to read
    data = b'{"id":"a","v":1.0}'
    settings = PipelineSettings()
    wrong = "0" * 64
    stream = RecordStream(HashedBytes(data, sha256=hashlib.sha256(data).hexdigest()), key="a.json",
                          settings=settings, expected_sha256=wrong)  # fmt: skip
    # WHEN decoded, THEN it is refused as superseded, as the streaming reader refuses it
    with pytest.raises(SupersededError):
        list(stream.records())
    # and a right version decodes to its one record, the integral float as an integer
    digest = hashlib.sha256(data).hexdigest()
    stream = RecordStream(HashedBytes(data, sha256=digest), key="a.json", settings=settings, expected_sha256=digest)
    assert [r.canonical for r in stream.records()] == ['{"id":"a","v":1}']
    assert (stream.size, stream.sha256, stream.multi) == (len(data), digest, False)
    # and corpus() has the benchmark's shape among its files
    assert sum(key.startswith("orders/") for key in corpus()) == 60
