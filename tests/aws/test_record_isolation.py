"""Issue 8, Why 11: one malformed record must never fail the others.

Each record of a Lambda event is parsed on its own. A record that cannot be understood
is skipped with a reason; in an SQS batch its message is reported in
``batchItemFailures`` (the queue's redrive moves it to the DLQ) -- unless it has no
usable ``messageId``, which is logged and dropped, because an empty identifier makes
Lambda fail the whole batch.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockline.aws.events import ParsedEvent, parse_event
from dockline.aws.handler import handle
from dockline.config import PipelineSettings
from tests.aws.test_events import EVENTS, sample
from tests.aws.world import World, s3_record, sqs_record

SETTINGS = PipelineSettings()
DEEP = "[" * 100_000 + "]" * 100_000  # a body nested 100k levels deep


def good_message(message_id: str, key: str = "incoming/ok.json") -> dict[str, Any]:
    return sqs_record({"Records": [s3_record("dockline-landing", key)]}, message_id=message_id)


def assert_only_reportable_ids(parsed: ParsedEvent) -> None:
    """Nothing ever names an empty or non-string message id."""
    for message_id in [m.message_id for m in parsed.malformed] + [i.message_id for i in parsed.items]:
        assert message_id is None or (isinstance(message_id, str) and message_id.strip()), message_id
    assert all(isinstance(m, str) and m.strip() for m in parsed.message_ids)


# -- one odd record among good ones: the good ones are still work -------------------------
def _attributes_null(r: dict[str, Any]) -> None:
    r["attributes"] = None


def _attributes_string(r: dict[str, Any]) -> None:
    r["attributes"] = "ApproximateReceiveCount=3"


def _deep_body(r: dict[str, Any]) -> None:
    r["body"] = DEEP


def _deep_object_body(r: dict[str, Any]) -> None:
    r["body"] = '{"a":' * 100_000 + "1" + "}" * 100_000


def _body_missing(r: dict[str, Any]) -> None:
    del r["body"]


def _body_number(r: dict[str, Any]) -> None:
    r["body"] = 17


def _event_source_missing(r: dict[str, Any]) -> None:
    del r["eventSource"]


def _inner(r: dict[str, Any], change: Any) -> None:
    body = json.loads(r["body"])
    change(body["Records"][0])
    r["body"] = json.dumps(body)


def _etag_number(r: dict[str, Any]) -> None:
    _inner(r, lambda rec: rec["s3"]["object"].update(eTag=12345))


def _etag_list(r: dict[str, Any]) -> None:
    _inner(r, lambda rec: rec["s3"]["object"].update(eTag=["d41d8cd98f00b204e9800998ecf8427e"]))


def _version_id_object(r: dict[str, Any]) -> None:
    _inner(r, lambda rec: rec["s3"]["object"].update(eTag=None, versionId={"id": "v1"}))


def _key_number(r: dict[str, Any]) -> None:
    _inner(r, lambda rec: rec["s3"]["object"].update(key=42))


def _bucket_name_list(r: dict[str, Any]) -> None:
    _inner(r, lambda rec: rec["s3"]["bucket"].update(name=["dockline-landing"]))


def _event_name_number(r: dict[str, Any]) -> None:
    _inner(r, lambda rec: rec.update(eventName=5))


def _receive_count_infinite(r: dict[str, Any]) -> None:
    r["attributes"] = {"ApproximateReceiveCount": "Infinity"}


def _receive_count_huge(r: dict[str, Any]) -> None:
    r["attributes"] = {"ApproximateReceiveCount": "9" * 10_000}


ODD_RECORDS = {
    "attributes-null": (_attributes_null, "work"),
    "attributes-string": (_attributes_string, "work"),
    "receive-count-infinite": (_receive_count_infinite, "work"),
    "receive-count-10000-digits": (_receive_count_huge, "work"),
    "event-source-missing": (_event_source_missing, "work"),
    "body-nested-100k-deep-array": (_deep_body, "reported"),
    "body-nested-100k-deep-object": (_deep_object_body, "reported"),
    "body-missing": (_body_missing, "reported"),
    "body-a-number": (_body_number, "reported"),
    "etag-a-number": (_etag_number, "reported"),
    "etag-a-list": (_etag_list, "reported"),
    "version-id-an-object": (_version_id_object, "reported"),
    "key-a-number": (_key_number, "reported"),
    "bucket-name-a-list": (_bucket_name_list, "reported"),
    "event-name-a-number": (_event_name_number, "reported"),
}


@pytest.mark.parametrize("case", sorted(ODD_RECORDS))
def test_why11_one_odd_sqs_record_never_fails_the_others(case: str) -> None:
    # GIVEN an SQS batch of three messages, the middle one odd in one way
    change, expected = ODD_RECORDS[case]
    records = [good_message("m-1", "incoming/one.json"), good_message("m-2"), good_message("m-3", "incoming/3.json")]
    change(records[1])
    # WHEN the batch is parsed
    parsed = parse_event({"Records": records}, SETTINGS)
    # THEN it does not raise, the batch is still an SQS batch, and both good files are work
    assert parsed.from_sqs
    keys = {(i.message_id, i.ref.key) for i in parsed.items}
    assert {("m-1", "incoming/one.json"), ("m-3", "incoming/3.json")} <= keys
    if expected == "work":  # odd but harmless: the message is still processed
        assert ("m-2", "incoming/ok.json") in keys
        assert parsed.malformed == []
    else:  # malformed: skipped with a reason, and reported with its own message id
        assert ("m-2", "incoming/ok.json") not in keys
        [bad] = parsed.malformed
        assert bad.message_id == "m-2"
        assert bad.reason and "\n" not in bad.reason and len(bad.reason) < 300
    assert_only_reportable_ids(parsed)


def test_why11_odd_receive_counts_count_as_one_attempt() -> None:
    for change in (_attributes_null, _attributes_string, _receive_count_infinite, _receive_count_huge):
        record = good_message("m-1")
        change(record)
        [item] = parse_event({"Records": [record]}, SETTINGS).items
        assert item.attempts == 1


@pytest.mark.parametrize("message_id", [None, "", "   ", 17, ["m"], {"id": "m"}])
def test_why11_a_message_without_a_usable_message_id_is_dropped_never_reported_empty(message_id: Any) -> None:
    # GIVEN a batch where one message has no usable messageId
    odd = good_message("x", "incoming/orphan.json")
    if message_id is None:
        del odd["messageId"]
    else:
        odd["messageId"] = message_id
    parsed = parse_event({"Records": [good_message("m-1"), odd]}, SETTINGS)
    # THEN the good message is work; the odd one is dropped with a reason, and named by no id
    assert [(i.message_id, i.ref.key) for i in parsed.items] == [("m-1", "incoming/ok.json")]
    [dropped] = parsed.malformed
    assert dropped.message_id is None
    assert "messageId" in dropped.reason
    assert parsed.message_ids == ["m-1"]
    assert_only_reportable_ids(parsed)


def test_why11_a_non_s3_sqs_message_is_malformed_with_its_id() -> None:
    # GIVEN an SQS batch where one message is something else entirely (a CloudWatch alarm, say)
    other = sqs_record({"AlarmName": "x", "NewStateValue": "ALARM"}, message_id="m-alarm")
    parsed = parse_event({"Records": [good_message("m-1"), other]}, SETTINGS)
    # THEN it is malformed under its id (the handler lists it in batchItemFailures)
    assert [m.message_id for m in parsed.malformed] == ["m-alarm"]
    assert [i.message_id for i in parsed.items] == ["m-1"]


def test_why11_a_record_in_an_sqs_batch_that_is_not_an_object_is_dropped() -> None:
    parsed = parse_event({"Records": [good_message("m-1"), "junk", None, 5]}, SETTINGS)
    assert [i.message_id for i in parsed.items] == ["m-1"]
    assert [m.message_id for m in parsed.malformed] == [None, None, None]


def _deep_list(levels: int) -> Any:
    deep: Any = []
    for _ in range(levels):
        deep = [deep]
    return deep


@pytest.mark.parametrize(
    "where",
    ["bucket name", "key", "eTag", "sequencer", "eventTime", "eventName", "eventSource", "size"],
)
def test_why11_deeply_nested_values_in_a_direct_event_never_raise(where: str) -> None:
    # GIVEN a direct S3 event (already a dict: Lambda decoded it) with a value nested so
    # deep that str() or repr() of it raises RecursionError, next to a good record
    deep = _deep_list(100_000)
    good = s3_record("dockline-landing", "incoming/good.json")
    odd = s3_record("dockline-landing", "incoming/odd.json")
    target = {
        "bucket name": (odd["s3"]["bucket"], "name"),
        "key": (odd["s3"]["object"], "key"),
        "eTag": (odd["s3"]["object"], "eTag"),
        "sequencer": (odd["s3"]["object"], "sequencer"),
        "eventTime": (odd, "eventTime"),
        "eventName": (odd, "eventName"),
        "size": (odd["s3"]["object"], "size"),
        "eventSource": (odd, "eventSource"),
    }[where]
    target[0][target[1]] = deep
    if where == "eventSource":
        del odd["s3"]
    # WHEN parsed THEN nothing raises, and the good record is work
    parsed = parse_event({"Records": [good, odd]}, SETTINGS)
    assert "incoming/good.json" in [i.ref.key for i in parsed.items]
    for bad in parsed.malformed:
        assert len(bad.reason) < 300


def test_why11_a_size_that_is_not_a_number_is_ignored_not_fatal() -> None:
    for size in ("big", -5, 1.5, None, True, {"n": 1}, "9" * 10_000):
        record = s3_record("dockline-landing", "incoming/s.json")
        record["s3"]["object"]["size"] = size
        [item] = parse_event({"Records": [record]}, SETTINGS).items
        assert item.ref.size is None, size


def test_why11_a_key_that_cannot_be_an_s3_key_is_malformed() -> None:
    for key in ("incoming/%ED%A0%80.json".replace("%ED%A0%80", "\ud800"), "incoming/" + "k" * 1100 + ".json"):
        record = s3_record("dockline-landing", "x.json")
        record["s3"]["object"]["key"] = key
        parsed = parse_event({"Records": [record, s3_record("dockline-landing", "incoming/g.json")]}, SETTINGS)
        assert [i.ref.key for i in parsed.items] == ["incoming/g.json"]
        [bad] = parsed.malformed
        assert "key" in bad.reason


# -- hypothesis: arbitrary JSON anywhere never makes parse_event raise -----------------------
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["aws:sqs", "aws:s3", "aws.s3", "Object Created", "ObjectCreated:Put", "Notification", "null"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _expand_bodies(node: Any) -> Any:
    """Sample events with their JSON-string bodies and messages opened up, so that the
    fuzzer reaches inside them too (``_close_bodies`` puts them back as strings)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("body", "Message") and isinstance(v, str):
                try:
                    out[k] = {"__json__": _expand_bodies(json.loads(v))}
                    continue
                except (ValueError, RecursionError):  # not JSON, or too deep: fuzzed as a string
                    pass
            out[k] = _expand_bodies(v)
        return out
    if isinstance(node, list):
        return [_expand_bodies(v) for v in node]
    return node


def _close_bodies(node: Any) -> Any:
    if isinstance(node, dict):
        if set(node) == {"__json__"}:
            return json.dumps(_close_bodies(node["__json__"]), allow_nan=True)
        return {k: _close_bodies(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_close_bodies(v) for v in node]
    return node


SAMPLES = {p.name: _expand_bodies(json.loads(p.read_text(encoding="utf-8"))) for p in sorted(EVENTS.glob("*.json"))}
ALL_PATHS = [(name, path) for name, event in SAMPLES.items() for path in _paths(event) if path]


def _replace(event: Any, path: tuple[Any, ...], value: Any) -> Any:
    event = copy.deepcopy(event)
    node = event
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return event


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(ALL_PATHS), JSON)
def test_why11_any_value_anywhere_in_a_sample_event_never_raises(where: tuple[str, Any], value: Any) -> None:
    # GIVEN a real-shaped sample event with one value (at any depth, bodies included)
    # replaced by arbitrary JSON
    name, path = where
    event = _close_bodies(_replace(SAMPLES[name], path, value))
    # WHEN parsed THEN it never raises, and never names an unusable message id
    parsed = parse_event(event, SETTINGS)
    assert_only_reportable_ids(parsed)
    # AND every SQS message is accounted for: work, skipped, or malformed (reported)
    if parsed.from_sqs:
        accounted = {i.message_id for i in parsed.items} | {m.message_id for m in parsed.malformed}
        assert accounted <= {*parsed.message_ids, None}


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_why11_arbitrary_json_as_an_event_or_an_sqs_body_never_raises(value: Any) -> None:
    assert_only_reportable_ids(parse_event(value, SETTINGS))
    assert_only_reportable_ids(parse_event({"Records": value}, SETTINGS))
    body = json.dumps(value, allow_nan=True)
    parsed = parse_event({"Records": [sqs_record(body, message_id="m-1"), good_message("m-2")]}, SETTINGS)
    assert_only_reportable_ids(parsed)
    assert ("m-2", "incoming/ok.json") in {(i.message_id, i.ref.key) for i in parsed.items}


# -- the handler: the good files are processed, only the bad message is handed back ----------
@pytest.fixture
def world(moto: None) -> World:
    return World()


def test_why11_handler_processes_the_good_messages_and_reports_only_the_malformed_one(world: World) -> None:
    # GIVEN a real batch of two files, plus a message nested 100k deep, a message with
    # null attributes, and one without a messageId
    world.put("incoming/a.json", '{"id": "a"}')
    world.put("incoming/b.json", '{"id": "b"}')
    records = world.drain_input()["Records"]
    assert len(records) == 2
    records[1]["attributes"] = None
    deep = sqs_record(DEEP, message_id="m-deep")
    orphan = sqs_record({"Records": [s3_record(world.bucket, "incoming/a.json")]}, message_id="x")
    del orphan["messageId"]
    # WHEN handled
    result = handle({"Records": [records[0], deep, records[1], orphan]}, world.engine)
    # THEN both files are processed; only the deep message goes back (its redrive takes
    # it to the DLQ); the orphan is never reported with an empty identifier
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-deep"}]}
    assert sorted(world.records()) == ["a", "b"]


def test_why11_sample_events_still_parse_as_before() -> None:
    # the fixes change nothing for well-formed events
    assert [i.ref.key for i in parse_event(sample("sqs_s3_events.json"), SETTINGS).items] == [
        "incoming/orders/2026-11-27/order 1001.json",
        "incoming/readings/sensor=7/batch+1.ndjson",
    ]


def test_why11_an_sns_message_that_is_not_json_is_malformed_not_fatal() -> None:
    event = sample("sns_s3_event.json")
    bad = copy.deepcopy(event["Records"][0])
    bad["Sns"]["Message"] = "[" * 100_000
    parsed = parse_event({"Records": [bad, event["Records"][0]]}, SETTINGS)
    assert [i.ref.key for i in parsed.items] == ["incoming/ünïcødé/€uro ☃.json"]
    [malformed] = parsed.malformed
    assert malformed.reason == "the SNS message is nested too deeply to be an event"
