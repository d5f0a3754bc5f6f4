"""Issue 8, Why 11 (last part): the handler stops starting files when the time left is
less than its slowest file so far plus a margin, and hands the rest back.

Real moto calls made slow by botocore event hooks that sleep (and throttle), and a fake
Lambda context whose deadline runs on the real clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from dockline.aws import handler
from dockline.aws.handler import FileTimes, handle, lambda_handler
from dockline.errors import TransientError
from tests.aws.world import World


class Deadline:
    """A Lambda context whose remaining time runs down with the real clock."""

    aws_request_id = "req-budget"

    def __init__(self, budget_ms: float) -> None:
        self._deadline = time.monotonic() + budget_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def sleeping(seconds: float) -> Any:
    def hook(**_: Any) -> None:
        time.sleep(seconds)

    return hook


class Throttled:
    """Every call waits, then is refused: total throttling. ``calls`` counts them."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def __call__(self, model: Any = None, **_: Any) -> None:
        self.calls += 1
        time.sleep(self.seconds)
        error: Any = {
            "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        raise ClientError(error, model.name)


@pytest.fixture
def world(moto: None) -> World:
    return World()


@pytest.fixture
def fresh_container() -> Iterator[None]:
    handler.reset_engine()
    yield
    handler.reset_engine()


def three_files(world: World) -> dict[str, Any]:
    for n in (1, 2, 3):
        world.put(f"incoming/t{n}.json", f'{{"id": "t{n}"}}')
    event = world.drain_input()
    assert len(event["Records"]) == 3
    return event


def keys_read(world: World) -> list[str]:
    """Starts a list of the keys each GetObject asks for from now on."""
    read: list[str] = []
    world.s3.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: read.append(params["Key"]))
    return read


def message_ids_by_key(event: dict[str, Any]) -> dict[str, str]:
    return {
        unquote_plus(json.loads(r["body"])["Records"][0]["s3"]["object"]["key"]).split("/")[-1]: r["messageId"]
        for r in event["Records"]
    }


@pytest.mark.slow
def test_why11_a_slow_store_makes_the_handler_hand_back_what_it_cannot_finish(world: World) -> None:
    # GIVEN three files, S3 answering each GetObject after 1 s, and 1.5 s left beyond the margin
    event = three_files(world)
    ids = message_ids_by_key(event)
    world.s3.meta.events.register("before-call.s3.GetObject", sleeping(1.0))
    read = keys_read(world)
    context = Deadline(handler.SAFETY_MARGIN_MS + 1_500)
    # WHEN the batch is handled
    result = handle(event, world.engine, context=context, file_times=FileTimes())
    # THEN the first file is processed; it took >= 1 s, so the 0.5 s or less left beyond
    # the margin is not enough for another one: the other two are handed back unstarted
    # (a fixed 10 s margin would have started the second file too)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [ids["t2.json"], ids["t3.json"]]
    assert list(world.records()) == ["t1"]
    assert read == ["incoming/t1.json"]


@pytest.mark.slow
def test_why11_under_total_throttling_the_throttled_file_sets_the_pace(world: World) -> None:
    # GIVEN every DynamoDB write waits 0.3 s and is then throttled, and 1.2 s left beyond the margin
    event = three_files(world)
    ids = message_ids_by_key(event)
    throttle = Throttled(0.3)
    world.dynamodb.meta.events.register("before-call.dynamodb.PutItem", throttle)
    read = keys_read(world)
    times = FileTimes()
    # WHEN the batch is handled
    result = handle(event, world.engine, context=Deadline(handler.SAFETY_MARGIN_MS + 1_200), file_times=times)
    # THEN the first file, retried until the pipeline gave up for now, took one 0.3 s wait
    # per throttled write, and is handed back...
    assert throttle.calls >= 2
    assert times.worst_ms >= 300 * throttle.calls
    # ...and the others are not even started: what is left is less than that file's time
    # plus the margin (a fixed 10 s margin would have started the second file)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [ids[f"t{n}.json"] for n in (1, 2, 3)]
    assert set(read) == {"incoming/t1.json"}
    assert world.records() == {}


def test_why11_the_slowest_file_is_remembered_across_invocations_of_the_container(
    world: World, monkeypatch: pytest.MonkeyPatch, fresh_container: None
) -> None:
    # GIVEN a warm container whose last invocation processed a file that took 0.6 s
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    world.put("incoming/slow.json", '{"id": "slow"}')
    s3 = handler.current_engine().clients.s3  # the container's own client, as lambda_handler builds it
    slow = sleeping(0.6)
    s3.meta.events.register("before-call.s3.GetObject", slow)
    lambda_handler(world.event("incoming/slow.json"), Deadline(60_000))
    s3.meta.events.unregister("before-call.s3.GetObject", slow)
    calls: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    # WHEN the next invocation (a direct S3 event) starts with 0.3 s left beyond the margin
    world.put("incoming/next.json", '{"id": "next"}')
    event = world.event("incoming/next.json")
    # THEN the file is not started, and Lambda is asked to retry the event
    with pytest.raises(TransientError, match=r"1 of 1 files must be retried: 'incoming/next.json'"):
        lambda_handler(event, Deadline(handler.SAFETY_MARGIN_MS + 300))
    assert calls == []
    assert list(world.records()) == ["slow"]
    # AND a new container (nothing timed yet) starts it with the same time left
    handler.reset_engine()
    assert lambda_handler(event, Deadline(handler.SAFETY_MARGIN_MS + 300))["files"][0]["status"] == "processed"


def test_why11_fast_files_all_fit_in_the_time_left(world: World) -> None:
    # GIVEN three quick files and 5 s beyond the margin THEN all are processed, none handed back
    event = three_files(world)
    times = FileTimes()
    result = handle(event, world.engine, context=Deadline(handler.SAFETY_MARGIN_MS + 5_000), file_times=times)
    assert result == {"batchItemFailures": []}
    assert sorted(world.records()) == ["t1", "t2", "t3"]
    assert 0 < times.worst_ms < 5_000
