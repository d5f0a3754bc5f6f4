"""`dockline backfill` as a library on moto: what is listed, what is sent, and that the
real handler takes what was sent (issue 10, item 7)."""

from __future__ import annotations

import io
import json
import time
import tomllib
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from dockline.aws.backfill import Tally, is_versioned, list_objects, listing_prefixes
from dockline.aws.backfill_run import Targets, run_backfill
from dockline.aws.handler import handle
from dockline.aws.runtime import Clients
from dockline.config import PipelineSettings, Settings, parse_settings
from dockline.errors import DocklineError
from tests.aws.conftest import REGION, TABLE
from tests.aws.world import World, fail_with

KEYS = ["incoming/a.json", "incoming/red flower+1.json", "incoming/sub/b.csv", "incoming/café.json"]


@pytest.fixture
def world(moto: None) -> World:
    return World()


def clients_of(world: World) -> Clients:
    clients = Clients()
    for name in ("s3", "dynamodb", "sqs"):
        clients.provide(name, getattr(world, name))
    return clients


def put_unannounced(world: World, keys: list[str]) -> None:
    """Objects whose S3 events were lost (as before the stack existed): put, then the
    events are drained away unprocessed."""
    for key in keys:
        world.put(key, "id,v\n1,2\n" if key.endswith(".csv") else json.dumps({"name": key}))
    world.drain_input()


def backfill(world: World, **options: Any) -> Tally:
    targets = Targets(world.bucket, TABLE, "queue", queue_url=world.input_url)
    return run_backfill(targets, world.settings, clients_of(world), sleep=lambda _s: None, **options)


def test_backfill_sends_unannounced_objects_and_the_handler_processes_them(world: World) -> None:
    # GIVEN objects in the bucket S3 never announced, one with a suffix the pipeline skips
    put_unannounced(world, [*KEYS, "incoming/readme.txt"])
    # WHEN backfill runs in queue mode
    tally = backfill(world)
    # THEN each matching object is one S3-shaped message in the input queue
    assert (tally.listed, tally.settled, tally.sent, tally.skipped_suffix) == (5, 0, 4, 1)
    assert tally.finished and not tally.errors
    event = world.drain_input()
    assert len(event["Records"]) == 4
    # AND the real handler takes those messages: every file is processed
    assert handle(event, world.engine) == {"batchItemFailures": []}
    assert {m["key"]: m["status"] for m in world.markers().values()} == dict.fromkeys(KEYS, "processed")
    assert sorted(n["attributes"]["key"] for n in world.notifications()) == sorted(KEYS)


def test_backfill_twice_sends_nothing_that_settled(world: World) -> None:
    # GIVEN a backfill whose messages the handler processed
    put_unannounced(world, KEYS)
    backfill(world)
    handle(world.drain_input(), world.engine)
    # WHEN it runs again
    again = backfill(world)
    # THEN it sends nothing: every object has a settled marker
    assert (again.listed, again.settled, again.sent) == (4, 4, 0)
    assert world.drain_input() == {"Records": []}


def test_backfill_skips_files_the_pipeline_already_settled_even_failed_ones(world: World) -> None:
    # GIVEN two files announced and settled by the handler (one failed for bad JSON), two never announced
    world.put("incoming/done.json", '{"id": "d"}')
    world.put("incoming/bad.json", '{"id": ')
    assert handle(world.drain_input(), world.engine) == {"batchItemFailures": []}
    put_unannounced(world, ["incoming/new1.json", "incoming/new2.json"])
    # WHEN backfill runs
    tally = backfill(world)
    # THEN only the two unannounced files are sent: a failed file is settled (redrive it from the DLQ)
    assert (tally.listed, tally.settled, tally.sent) == (4, 2, 2)
    sent = [json.loads(r["body"])["Records"][0]["s3"]["object"]["key"] for r in world.drain_input()["Records"]]
    assert sorted(sent) == ["incoming/new1.json", "incoming/new2.json"]


def test_backfill_resends_a_file_whose_notification_never_went_out(world: World) -> None:
    # GIVEN a failed file whose marker still owes its notification (the publish failed)
    world.put("incoming/bad.json", '{"id": ')
    world.sns.meta.events.register("before-call.sns.Publish", fail_with("AuthorizationError", 403))
    handle(world.drain_input(), world.engine)
    marker = world.marker("incoming/bad.json")
    assert marker is not None and marker["notified"] is False
    # WHEN backfill runs
    tally = backfill(world)
    # THEN it sends the file again, so the handler can close the outbox
    assert (tally.settled, tally.sent) == (0, 1)


def test_backfill_dry_run_sends_nothing_and_names_what_it_would_send(world: World) -> None:
    put_unannounced(world, KEYS)
    named: list[str] = []
    tally = backfill(world, dry_run=True, on_would_send=lambda entry: named.append(entry.ref.key))
    assert tally.sent == 4 and tally.dry_run
    assert sorted(named) == sorted(KEYS)
    assert world.drain_input() == {"Records": []}
    assert "would send 4" in tally.line()


def test_backfill_since_and_prefix_narrow_the_walk(world: World) -> None:
    put_unannounced(world, KEYS)
    later = datetime.now(UTC) + timedelta(hours=1)
    tally = backfill(world, since=later)
    assert (tally.listed, tally.skipped_since, tally.sent) == (4, 4, 0)
    narrowed = backfill(world, prefix="incoming/sub/", dry_run=True)
    assert (narrowed.listed, narrowed.sent) == (1, 1)


def test_a_prefix_outside_the_pipeline_is_refused() -> None:
    pipeline = PipelineSettings()
    assert listing_prefixes(pipeline, None) == ("incoming/",)
    assert listing_prefixes(pipeline, "inc") == ("incoming/",)
    assert listing_prefixes(pipeline, "incoming/2026/") == ("incoming/2026/",)
    with pytest.raises(DocklineError, match="outside every route's prefix"):
        listing_prefixes(pipeline, "outgoing/")


ROUTED = """
[[routes]]
name = "cloudtrail"
prefix = "AWSLogs/"
suffixes = [".json"]

[[routes]]
name = "sensors"
prefix = "iot/"
suffixes = [".csv"]

[[routes]]
name = "north"
prefix = "iot/north/"
suffixes = [".json"]
"""


def test_backfill_lists_under_every_route_prefix(world: World) -> None:
    # GIVEN routes outside incoming/ (one inside another's prefix), and objects under each
    # (before: only [pipeline]'s incoming/ was listed, so routed objects were never backfilled)
    settings = replace(world.settings, pipeline=parse_settings(tomllib.loads(ROUTED)).pipeline)
    assert listing_prefixes(settings.pipeline, None) == ("AWSLogs/", "iot/")
    assert listing_prefixes(settings.pipeline, "iot/south/") == ("iot/south/",)
    put_unannounced(world, ["AWSLogs/1/a.json", "iot/s.csv", "iot/north/n.json", "incoming/x.json", "other/o.json"])
    # WHEN backfill runs with those settings
    targets = Targets(world.bucket, TABLE, "queue", queue_url=world.input_url)
    tally = run_backfill(targets, settings, clients_of(world), sleep=lambda _s: None)
    # THEN every routed object was sent, each once, and nothing no route takes
    bodies = [json.loads(r["body"]) for r in world.drain_input()["Records"]]
    sent = sorted(unquote_plus(e["s3"]["object"]["key"]) for body in bodies for e in body["Records"])
    assert sent == ["AWSLogs/1/a.json", "iot/north/n.json", "iot/s.csv"]
    assert (tally.listed, tally.sent) == (3, 3)


def test_backfill_sends_every_version_of_a_versioned_bucket(world: World) -> None:
    # GIVEN a versioned bucket where one key was written twice (both events lost)
    world.s3.put_bucket_versioning(Bucket=world.bucket, VersioningConfiguration={"Status": "Enabled"})
    put_unannounced(world, ["incoming/v.json", "incoming/v.json", "incoming/w.json"])
    assert is_versioned(world.s3, world.bucket)
    # WHEN backfill runs, and with --latest-only
    latest = backfill(world, dry_run=True, latest_only=True)
    tally = backfill(world)
    # THEN each version is one message naming its version id; --latest-only skips the older one
    assert (latest.sent, latest.skipped_older) == (2, 1)
    assert tally.sent == 3
    event = world.drain_input()
    versions = {json.loads(r["body"])["Records"][0]["s3"]["object"].get("versionId") for r in event["Records"]}
    assert len(versions) == 3 and None not in versions
    # AND the handler settles each version under its own marker; a second run sends none
    assert handle(event, world.engine) == {"batchItemFailures": []}
    assert backfill(world).sent == 0


def test_listing_is_paginated(world: World) -> None:
    # GIVEN 25 objects and pages of 10
    put_unannounced(world, [f"incoming/{n:02}.json" for n in range(25)])
    calls: list[str] = []
    world.s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append("list"))
    # WHEN the bucket is listed
    listed = list(list_objects(world.s3, world.bucket, "incoming/", versioned=False, page_size=10))
    # THEN all 25 come back over three calls
    assert len(listed) == 25 and len(calls) == 3


def test_a_failure_mid_run_loses_nothing_and_a_rerun_sends_the_rest(world: World) -> None:
    # GIVEN 30 unannounced objects, and a queue that fails for good after two batches
    keys = [f"incoming/{n:02}.json" for n in range(30)]
    put_unannounced(world, keys)
    fault = fail_with("AccessDenied", 403)
    sent_batches: list[int] = []

    def third_fails(**kwargs: Any) -> None:
        sent_batches.append(1)
        if len(sent_batches) == 3:
            fault(**kwargs)

    world.sqs.meta.events.register("before-call.sqs.SendMessageBatch", third_fails)
    # WHEN backfill runs
    first = backfill(world)
    # THEN it stops with the error and the tally so far
    assert not first.finished and first.errors and first.sent == 20
    world.sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", third_fails)
    # WHEN the first 20 are processed and the backfill runs again
    handle(world.drain_input(), world.engine)
    second = backfill(world)
    # THEN it sends exactly the 10 that were never sent
    assert (second.settled, second.sent) == (20, 10)
    rest = {json.loads(r["body"])["Records"][0]["s3"]["object"]["key"] for r in world.drain_input()["Records"]}
    assert rest == set(keys) - {m["key"] for m in world.markers().values()}


@pytest.mark.slow
def test_rate_bounds_messages_per_second(world: World) -> None:
    # GIVEN 30 objects and --rate 20 (real time: a lower bound only, never an upper one)
    put_unannounced(world, [f"incoming/{n:02}.json" for n in range(30)])
    targets = Targets(world.bucket, TABLE, "queue", queue_url=world.input_url)
    started = time.monotonic()
    tally = run_backfill(targets, world.settings, clients_of(world), rate=20)
    elapsed = time.monotonic() - started
    # THEN all are sent, and not faster than 20 per second (30 / 20 = 1.5 s)
    assert tally.sent == 30
    assert elapsed >= 1.4


def test_direct_mode_invokes_the_function_asynchronously_with_s3_events(world: World) -> None:
    # GIVEN the function, and objects S3 never announced
    role = boto3.client("iam", region_name=REGION).create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def h(event, context):\n    return None\n")
    lam = boto3.client("lambda", region_name=REGION)
    lam.create_function(
        FunctionName="dockline", Runtime="python3.13", Role=role["Role"]["Arn"], Handler="h.h",
        Code={"ZipFile": code.getvalue()},
    )  # fmt: skip
    put_unannounced(world, KEYS)
    invoked: list[dict[str, Any]] = []
    lam.meta.events.register("before-call.lambda.Invoke", lambda params, **_: invoked.append(params))
    clients = clients_of(world).provide("lambda", lam)
    # WHEN backfill runs in direct mode
    targets = Targets(world.bucket, TABLE, "direct", function_name="dockline")
    tally = run_backfill(targets, world.settings, clients, sleep=lambda _s: None)
    # THEN one asynchronous invocation per object, each an S3 event the real handler processes
    assert tally.sent == 4 and tally.finished
    assert {call["headers"].get("X-Amz-Invocation-Type") for call in invoked} == {"Event"}
    for call in invoked:
        result = handle(json.loads(call["body"]), world.engine)
        assert [f["status"] for f in result["files"]] == ["processed"]
    assert backfill(world).sent == 0


def test_backfill_respects_a_pipeline_without_gzip(world: World) -> None:
    # GIVEN settings whose suffixes do not take .gz
    world.settings = Settings(pipeline=PipelineSettings(gzip=False))
    put_unannounced(world, ["incoming/a.json", "incoming/b.json.gz"])
    tally = backfill(world, dry_run=True)
    assert (tally.sent, tally.skipped_suffix) == (1, 1)
