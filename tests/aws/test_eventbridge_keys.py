"""Issue 8, Why 16: EventBridge keys may or may not be URL-encoded.

The decoded key is tried first; when it does not hold the pinned version and the raw
key differs, the raw key is tried before deciding. Each order is tested end to end on
moto, with '+' and '%' in names.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dockline.aws.events import parse_event
from dockline.aws.handler import handle
from dockline.aws.store import S3Store
from dockline.config import PipelineSettings
from dockline.errors import TransientError
from dockline.models import ObjectRef
from tests.aws.test_events import sample
from tests.aws.world import Fault, World


@pytest.fixture
def world(moto: None) -> World:
    return World()


def eventbridge(world: World, key_in_event: str, etag: str) -> dict[str, Any]:
    """The "Object Created" event EventBridge sends for an unversioned bucket."""
    event = copy.deepcopy(sample("eventbridge_object_created.json"))
    event["detail"]["bucket"]["name"] = world.bucket
    obj = event["detail"]["object"]
    obj.update(key=key_in_event, etag=etag)
    del obj["version-id"]
    return event


# (key in the event, key in the bucket, which reading it is)
ORDERS = [
    ("incoming/a+b.json", "incoming/a b.json", "decoded"),
    ("incoming/a+b.json", "incoming/a+b.json", "raw"),
    ("incoming/50%25off.json", "incoming/50%off.json", "decoded"),
    ("incoming/50%25off.json", "incoming/50%25off.json", "raw"),
    ("incoming/c%2B%2B+100%25.json", "incoming/c++ 100%.json", "decoded"),
    ("incoming/c%2B%2B+100%25.json", "incoming/c%2B%2B+100%25.json", "raw"),
]


@pytest.mark.parametrize(("in_event", "in_bucket", "reading"), ORDERS)
def test_why16_the_key_the_bucket_holds_is_processed_whichever_encoding_the_event_used(
    world: World, in_event: str, in_bucket: str, reading: str
) -> None:
    # GIVEN an object, and an EventBridge event naming it encoded or raw
    etag = world.put(in_bucket, '{"v": 1}')
    event = eventbridge(world, in_event, etag)
    world.calls.reset()
    # WHEN the handler runs
    [summary] = handle(event, world.engine)["files"]
    # THEN the file is processed under the key it has in the bucket
    assert (summary["status"], summary["key"]) == ("processed", in_bucket)
    assert list(world.records()) == [in_bucket]
    [note] = world.notifications()
    assert note["message"] == f"New file processed: {in_bucket}"
    # AND the decoded key is read first; the raw one only when the decoded one is not there
    reads = [c for c in world.calls.calls if c.startswith("s3.")]
    if reading == "decoded":
        assert reads == ["s3.GetObject"]  # no more calls than any other file
    else:
        assert reads == ["s3.GetObject", "s3.HeadObject", "s3.GetObject"]


def test_why16_neither_key_exists_fails_as_no_longer_exists_under_the_decoded_key(world: World) -> None:
    etag = world.put("incoming/elsewhere.json", "{}")
    [summary] = handle(eventbridge(world, "incoming/a+b.json", etag), world.engine)["files"]
    assert (summary["status"], summary["key"], summary["reason"]) == (
        "failed",
        "incoming/a b.json",
        "object no longer exists",
    )


def test_why16_both_keys_exist_the_one_holding_the_version_wins(world: World) -> None:
    # GIVEN both "a b.json" and "a+b.json" exist; the event names the raw key's version
    world.put("incoming/a b.json", '{"which": "decoded"}')
    etag = world.put("incoming/a+b.json", '{"which": "raw"}')
    # WHEN handled THEN the raw key is processed: the decoded key holds another version
    [summary] = handle(eventbridge(world, "incoming/a+b.json", etag), world.engine)["files"]
    assert (summary["status"], summary["key"]) == ("processed", "incoming/a+b.json")
    assert world.records()["incoming/a+b.json"]["payload"] == {"which": "raw"}


def test_why16_a_raw_key_overwritten_since_is_judged_under_the_raw_key(world: World) -> None:
    # GIVEN only the raw key exists, and it was overwritten after the event
    old = world.put("incoming/a+b.json", '{"v": 1}')
    world.put("incoming/a+b.json", '{"v": 2}')
    # WHEN handled THEN the outcome names the raw key, and why (superseded on the store's side)
    [summary] = handle(eventbridge(world, "incoming/a+b.json", old), world.engine)["files"]
    assert summary["key"] == "incoming/a+b.json"
    assert "replaced by a newer version" in summary["reason"]


def test_why16_a_decoded_key_overwritten_since_stays_the_decoded_key(world: World) -> None:
    # GIVEN only the decoded key exists, overwritten after the event
    old = world.put("incoming/a b.json", '{"v": 1}')
    world.put("incoming/a b.json", '{"v": 2}')
    [summary] = handle(eventbridge(world, "incoming/a+b.json", old), world.engine)["files"]
    assert summary["key"] == "incoming/a b.json"
    assert "replaced by a newer version" in summary["reason"]


def test_why16_only_eventbridge_items_carry_a_raw_key_and_only_when_it_differs() -> None:
    settings = PipelineSettings()
    [bridge] = parse_event(sample("eventbridge_object_created.json"), settings).items
    assert (bridge.ref.key, bridge.raw_key) == ("incoming/event bridge=yes.json", "incoming/event+bridge%3Dyes.json")
    [s3] = parse_event(sample("s3_put.json"), settings).items  # S3 notifications are always encoded
    assert s3.raw_key is None
    plain = copy.deepcopy(sample("eventbridge_object_created.json"))
    plain["detail"]["object"]["key"] = "incoming/plain.json"
    [item] = parse_event(plain, settings).items
    assert item.raw_key is None


def test_why16_a_raw_key_outside_the_prefix_is_not_tried() -> None:
    # "incoming%2Fx.json" decodes into the prefix; raw, it is outside it and never read
    event = copy.deepcopy(sample("eventbridge_object_created.json"))
    event["detail"]["object"]["key"] = "incoming%2Fx.json"
    [item] = parse_event(event, PipelineSettings()).items
    assert (item.ref.key, item.raw_key) == ("incoming/x.json", None)


def test_why16_an_answer_kept_for_the_chosen_key_is_used_once_and_released(world: World) -> None:
    # GIVEN the raw key holds the object, and every GetObject's body is watched
    etag = world.put("incoming/a+b.json", "{}")
    bodies: list[Any] = []
    world.s3.meta.events.register(
        "after-call.s3.GetObject", lambda parsed, **_: bodies.extend([parsed["Body"]] if "Body" in parsed else [])
    )
    store = S3Store(client=world.s3)
    ref = ObjectRef(world.bucket, "incoming/a b.json", etag)
    # WHEN the key is located and the block ends without anyone opening it
    with store.located(ref, "incoming/a+b.json") as chosen:
        assert chosen.key == "incoming/a+b.json"
    # THEN the fetched body was released
    [body] = bodies
    assert body._raw_stream.closed
    # AND a later open reads afresh, exactly once, and gets the bytes
    world.calls.reset()
    with store.open(chosen) as stream:
        assert stream.read() == b"{}"
    assert world.calls.calls == ["s3.GetObject"]


def test_why16_a_decoded_read_that_fails_for_now_is_kept_and_raised_by_the_open(world: World) -> None:
    # GIVEN S3 throttles the first GetObject
    etag = world.put("incoming/a b.json", "{}")
    world.s3.meta.events.register("before-call.s3.GetObject", Fault("SlowDown", 503, times=1))
    store = S3Store(client=world.s3)
    ref = ObjectRef(world.bucket, "incoming/a b.json", etag)
    # WHEN the key is located THEN the raw key is not tried (the decoded one was not
    # found missing), and the open raises the kept error without asking S3 again
    with store.located(ref, "incoming/a+b.json") as chosen:
        assert chosen == ref
        world.calls.reset()
        with pytest.raises(TransientError, match="SlowDown"), store.open(chosen):
            pass
        assert world.calls.calls == []


def test_why16_a_raw_key_that_matches_a_prefix_the_decoded_one_does_not_is_kept() -> None:
    # GIVEN a pipeline whose prefix holds a '+', and an event with that key raw
    event = copy.deepcopy(sample("eventbridge_object_created.json"))
    event["detail"]["object"]["key"] = "c+d/x.json"
    # THEN the item is kept: its decoded key does not match, but its raw key does
    [item] = parse_event(event, PipelineSettings(prefix="c+d/")).items
    assert (item.ref.key, item.raw_key) == ("c d/x.json", "c+d/x.json")
