"""Issue 9 item 1: record selectors ("/Records") and id selectors ("/order/id", composite)."""

from __future__ import annotations

import io
import tomllib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockline.config import PipelineSettings, parse_settings
from dockline.decode import RecordStream, derive_pk
from dockline.errors import PermanentError
from dockline.jsonx import dumps, exact_payload
from dockline.memory import MemoryLedger
from dockline.models import ConflictPolicy, ObjectRef
from dockline.selectors import IdSelector, MissingPath, Pointer, pointer_text


def routed(extra: str, *, prefix: str = "in/", suffixes: str = '[".json"]') -> PipelineSettings:
    text = f'[[routes]]\nname = "r"\nprefix = "{prefix}"\nsuffixes = {suffixes}\n{extra}\n'
    return parse_settings(tomllib.loads(text)).pipeline


def decode(data: bytes, p: PipelineSettings, key: str = "in/a.json") -> tuple[list[Any], RecordStream]:
    stream = RecordStream(io.BytesIO(data), key=key, settings=p)
    return list(stream.records()), stream


@pytest.mark.parametrize(
    ("pointer", "document", "value"),
    [
        ("/a~1b", {"a/b": 1}, 1),  # ~1 is "/"
        ("/m~0n", {"m~n": 2}, 2),  # ~0 is "~"
        ("/~01", {"~1": 3}, 3),  # ~01 is "~1", not "/"
        ("/a/0/b", {"a": [{"b": 4}]}, 4),
        ("/", {"": 5}, 5),  # the empty key
        ("", {"x": 1}, {"x": 1}),  # the whole document
    ],
)
def test_selectors_json_pointer_escapes(pointer: str, document: Any, value: Any) -> None:
    assert Pointer.parse(pointer).resolve(document) == value


@pytest.mark.parametrize(
    ("pointer", "document", "reason"),
    [
        ("/order/id", {"order": {}}, "no key 'id' in the object at /order"),
        ("/order/id", {}, "no key 'order' in the object at the top level"),
        ("/order/id", {"order": 5}, "/order is a number, not an object or array"),
        ("/a/2", {"a": [1]}, "the array at /a has 1 elements, no index 2"),
        ("/a/01", {"a": [1, 2]}, "'01' is not an index of the array at /a"),
        ("/a/-", {"a": [1]}, "'-' is not an index"),
    ],
)
def test_selectors_missing_paths_say_where(pointer: str, document: Any, reason: str) -> None:
    with pytest.raises(MissingPath, match=reason):
        Pointer.parse(pointer).resolve(document)


def test_selectors_nested_and_composite_ids() -> None:
    doc = {"order": {"id": "o-1", "line": 3}, "shop": 7}
    assert derive_pk(doc, "k", IdSelector.parse("/order/id")) == "o-1"
    assert derive_pk(doc, "k", IdSelector.parse(["/shop", "/order/id", "/order/line"])) == "7#o-1#3"
    with pytest.raises(PermanentError, match=r"^id /order/nope is missing: no key 'nope' in the object at /order$"):
        derive_pk(doc, "k", IdSelector.parse(["/order/id", "/order/nope"]))
    with pytest.raises(PermanentError, match=r"id /order must be a non-empty string or an integer, not an object"):
        derive_pk(doc, "k", IdSelector.parse("/order"))
    with pytest.raises(PermanentError, match="reserved"):
        derive_pk({"a": "dockline#x"}, "k", IdSelector.parse("/a"))


def test_selectors_cloudtrail_records_array_gives_one_item_per_event() -> None:
    # GIVEN a CloudTrail-shaped gzip file and a route naming its Records array and eventID
    import gzip

    body = {"Records": [{"eventID": "e1", "n": 1}, {"eventID": "e2", "n": 2.5}]}
    data = gzip.compress(orjson.dumps(body))
    p = routed('records = "/Records"\nid = "/eventID"', suffixes='[".json.gz"]')
    records, stream = decode(data, p, key="in/ct.json.gz")
    # THEN each event is an item keyed by its eventID
    assert [(r.pk, r.index) for r in records] == [("e1", 1), ("e2", 2)]
    assert stream.multi


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"records": []}, "records /Records is missing: no key 'Records' in the object at the top level"),
        ({"Records": {"a": 1}}, "records /Records is an object, not an array of records"),
    ],
)
def test_selectors_missing_record_array_fails_the_file(document: Any, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason):
        decode(orjson.dumps(document), routed('records = "/Records"'))


def test_selectors_record_without_configured_id_is_a_bad_record_skipped_or_failing() -> None:
    lines = b'{"order": {"id": "a"}}\n{"order": {}}\n{"order": {"id": "c"}}\n'
    p = routed('id = "/order/id"\non_bad_record = "skip"', suffixes='[".jsonl"]')
    records, stream = decode(lines, p, key="in/a.jsonl")
    assert [r.pk for r in records] == ["a", "c"]
    assert [(b.index, b.reason) for b in stream.skipped] == [
        (2, "id /order/id is missing: no key 'id' in the object at /order")
    ]
    failing = routed('id = "/order/id"', suffixes='[".jsonl"]')
    with pytest.raises(PermanentError, match=r"^line 2: id /order/id is missing"):
        decode(lines, failing, key="in/a.jsonl")


# Values an array element may hold, numbers included (exact), as JSON gives them.
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=5),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)  # fmt: skip
_objects = st.dictionaries(st.text(min_size=1, max_size=4), _scalars, max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    elements=st.lists(_objects, max_size=12),
    ids=st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", 1, 2, 3]), max_size=12),
    key_name=st.sampled_from(["Records", "a/b", "m~n", "orders"]),
)
def test_selectors_split_and_rejoin_gives_the_array_back_and_ids_are_unique_or_reported(
    elements: list[dict[str, Any]], ids: list[Any], key_name: str
) -> None:
    # GIVEN an array under a key needing escapes, elements carrying an id (perhaps repeated)
    for element, value in zip(elements, ids, strict=False):
        element["eventID"] = value
    escaped = key_name.replace("~", "~0").replace("/", "~1")
    document = {key_name: elements, "other": 1}
    p = routed(f'records = "/{escaped}"\nid = "/eventID"\non_bad_record = "skip"')
    # WHEN split by the record selector
    records, stream = decode(dumps(document), p)
    # THEN re-joined the records are the array (elements without an id are reported)
    missing = [i for i, e in enumerate(elements, start=1) if "eventID" not in e]
    assert [b.index for b in stream.skipped] == missing
    kept = [e for e in elements if "eventID" in e]
    assert [exact_payload(r.payload) for r in records] == [exact_payload(e) for e in kept]
    # AND each id is unique, or its repeats are reported by the ledger, never lost silently
    report = MemoryLedger().write(ObjectRef("b", "in/a.json", "v1"), records, policy=ConflictPolicy.REJECT, now="t")
    first: dict[str, str] = {}
    differing = 0
    for record in records:
        differing += first.setdefault(record.pk, record.content_hash) != record.content_hash
    assert len(report.conflicts) == differing  # a repeated id with other content is a reported conflict
    assert len(report.written) + len(report.conflicts) == len(records)  # identical repeats are the same item


@settings(max_examples=200, deadline=None)
@given(tokens=st.lists(st.text(alphabet="ab/~01", max_size=4), max_size=4))
def test_selectors_pointer_text_and_parse_round_trip_any_key(tokens: list[str]) -> None:
    # GIVEN any path of object keys, "/" and "~" included, WHEN written as a pointer and parsed
    pointer = Pointer.parse(pointer_text(tokens))
    # THEN it names the same keys, and resolves in a document built along them
    assert list(pointer.tokens) == tokens
    document: Any = "leaf"
    for token in reversed(tokens):
        document = {token: document}
    assert pointer.resolve(document) == "leaf"
