"""Lambda events -> work items, on real-shaped sample events from tests/events/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from hypothesis import given
from hypothesis import strategies as st

from dockline.aws.events import object_refs, parse_event
from dockline.config import PipelineSettings

EVENTS = Path(__file__).resolve().parents[1] / "events"
SETTINGS = PipelineSettings()


def sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_direct_s3_event_key_is_decoded_with_space_plus_equals_and_unicode() -> None:
    # GIVEN the S3 event for "incoming/red flower+plus=eq café.json", URL-encoded as S3 sends it
    event = sample("s3_put.json")
    # WHEN it is parsed
    parsed = parse_event(event, SETTINGS)
    # THEN there is one work item with the decoded key, the ETag as version and the sequencer
    assert not parsed.from_sqs
    [item] = parsed.items
    assert item.ref.key == "incoming/red flower+plus=eq café.json"
    assert item.ref.bucket == "dockline-landing"
    assert item.ref.version == "d41d8cd98f00b204e9800998ecf8427e"
    assert item.ref.sequencer == "0055AED6DCD90281E5"
    assert item.ref.event_time == "2026-11-27T12:00:00.000Z"
    assert item.ref.size == 1024
    assert item.message_id is None
    assert item.attempts == 1


def test_versioned_bucket_uses_the_version_id() -> None:
    [item] = parse_event(sample("s3_put_versioned.json"), SETTINGS).items
    assert item.ref.version == "096fKKXTRTtl3on89fVO.nfljtsv6qko"


def test_s3_test_event_is_skipped_not_malformed() -> None:
    parsed = parse_event(sample("s3_test_event.json"), SETTINGS)
    assert parsed.items == []
    assert parsed.malformed == []
    assert any("s3:TestEvent" in s for s in parsed.skipped)


def test_sqs_batch_keeps_message_ids_and_receive_counts_and_skips_test_events() -> None:
    # GIVEN an SQS batch: an S3 event, a TestEvent, and an NDJSON file received 3 times
    parsed = parse_event(sample("sqs_s3_events.json"), SETTINGS)
    # THEN both files are work items, each with its message id; the TestEvent is skipped
    assert parsed.from_sqs
    assert [(i.ref.key, i.message_id, i.attempts) for i in parsed.items] == [
        ("incoming/orders/2026-11-27/order 1001.json", "059f36b4-87a3-44ab-83d2-661975830a7d", 1),
        ("incoming/readings/sensor=7/batch+1.ndjson", "7a2b1c5e-0f9d-4c61-b0a1-1f1f4b7e6c3a", 3),
    ]
    assert parsed.malformed == []
    assert len(parsed.message_ids) == 3
    # AND a multipart ETag is kept as the version
    assert parsed.items[1].ref.version == "3858f62230ac3c915f300c664312c63f-2"


def test_sns_wrapped_event_with_unicode_key() -> None:
    [item] = parse_event(sample("sns_s3_event.json"), SETTINGS).items
    assert item.ref.key == "incoming/ünïcødé/€uro ☃.json"
    assert item.message_id is None


def test_sns_envelope_inside_an_sqs_body() -> None:
    parsed = parse_event(sample("sqs_sns_s3_event.json"), SETTINGS)
    [item] = parsed.items
    assert item.ref.key == "incoming/fan out/a=b&c.json"
    assert item.message_id == "c9a8b7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d"


def test_eventbridge_object_created() -> None:
    [item] = parse_event(sample("eventbridge_object_created.json"), SETTINGS).items
    assert item.ref.key == "incoming/event bridge=yes.json"
    assert item.ref.version == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert item.ref.sequencer == "617f08299329d189"
    assert item.ref.event_time == "2026-11-27T12:00:00Z"


def test_lambda_destination_record_yields_the_original_event_and_its_invoke_count() -> None:
    [item] = parse_event(sample("lambda_destination_on_failure.json"), SETTINGS).items
    assert item.ref.key == "incoming/retried away.json"
    assert item.attempts == 3


def test_object_removed_is_skipped() -> None:
    parsed = parse_event(sample("s3_object_removed.json"), SETTINGS)
    assert parsed.items == []
    assert parsed.malformed == []
    assert "ObjectRemoved:Delete is not an object-created event" in parsed.skipped


def test_keys_outside_prefix_or_suffix_are_skipped_case_sensitively() -> None:
    event = sample("s3_put.json")
    for key in ("outgoing/a.json", "incoming/a.JSON", "incoming/a.txt", "Incoming/a.json"):
        event["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")
        parsed = parse_event(event, SETTINGS)
        assert parsed.items == [], key
        assert parsed.skipped, key
    # AND object_refs, used for dead letters, takes every key
    assert [i.ref.key for i in object_refs(event).items] == ["Incoming/a.json"]


def test_malformed_sqs_messages_are_reported_with_their_message_ids() -> None:
    # GIVEN a body that is not JSON and one that is JSON but no event
    parsed = parse_event(sample("sqs_malformed.json"), SETTINGS)
    # THEN neither is work; both are malformed, with their message ids (for batchItemFailures)
    assert parsed.items == []
    assert [m.message_id for m in parsed.malformed] == [
        "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "6f5e4d3c-2b1a-4c9d-8e7f-6a5b4c3d2e1f",
    ]
    assert "not JSON" in parsed.malformed[0].reason


def test_garbage_direct_events_never_raise() -> None:
    events: list[Any] = [{}, {"Records": []}, {"Records": [1]}, {"Records": [{"s3": {}}]}, [], "x", None]
    for event in events:
        parsed = parse_event(event, SETTINGS)
        assert parsed.items == []
        assert parsed.malformed, event


def test_an_s3_record_without_etag_or_version_is_malformed() -> None:
    event = sample("s3_put.json")
    del event["Records"][0]["s3"]["object"]["eTag"]
    parsed = parse_event(event, SETTINGS)
    assert parsed.items == []
    assert "neither an ETag nor a version id" in parsed.malformed[0].reason


@given(st.text(min_size=1, max_size=200))
def test_any_unicode_key_round_trips_through_the_parser(name: str) -> None:
    # GIVEN any key under the prefix with a matching suffix, encoded as S3 does
    # (quote_plus; real S3 leaves '/' alone, moto encodes it too)
    key = f"incoming/{name}.json"
    for encoded in (quote_plus(key, safe="/"), quote_plus(key)):
        event = sample("s3_put.json")
        event["Records"][0]["s3"]["object"]["key"] = encoded
        # WHEN parsed
        [item] = parse_event(event, SETTINGS).items
        # THEN the decoded key is exactly the original
        assert item.ref.key == key


def test_why11_sample_batch_of_odd_sqs_records() -> None:
    # GIVEN the sample batch of nine messages, most of them odd in one way
    parsed = parse_event(sample("sqs_odd_records.json"), SETTINGS)
    # THEN the good ones are work (odd attributes count as a first receive; an odd size is dropped)
    assert [(i.message_id[-1], i.ref.key, i.attempts, i.ref.size) for i in parsed.items if i.message_id] == [
        ("1", "incoming/orders/2026-11-27/order 1001.json", 1, 1024),
        ("2", "incoming/orders/2026-11-27/order 1001.json", 1, 1024),
        ("3", "incoming/orders/2026-11-27/order 1001.json", 1, 1024),
        ("8", "incoming/odd size.json", 1, None),
    ]
    # AND the malformed ones are reported by id, except the two without a usable messageId
    assert [m.message_id[-1] if m.message_id else None for m in parsed.malformed] == ["4", "5", None, None, "9"]
    assert "eTag that is not a string" in parsed.malformed[0].reason
    assert "nested too deeply" in parsed.malformed[1].reason
    assert all("messageId" in m.reason for m in parsed.malformed[2:4])
    assert "" not in parsed.message_ids


def test_why16_sample_eventbridge_event_with_a_raw_plus_in_its_key() -> None:
    [item] = parse_event(sample("eventbridge_object_created_raw_key.json"), SETTINGS).items
    assert (item.ref.key, item.raw_key) == ("incoming/c   notes v2.json", "incoming/c++ notes+v2.json")
    assert item.ref.version == "b1946ac92492d2347c6235b4d2611184"
