"""Settings -> stack inputs, without CDK: filters, names, the function's environment, validation."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockline.config import AwsSettings, AwsSubscription, PipelineSettings, Settings, settings_from_env
from dockline.errors import ConfigError
from dockline.infra.wiring import (
    KeyFilter,
    function_environment,
    key_filters,
    pipeline_environment,
    validate_for_aws,
)
from dockline.models import BadRecordPolicy, ConflictPolicy, RecordMode


def test_one_filter_per_suffix_including_gzip_variants() -> None:
    filters = key_filters(PipelineSettings(prefix="incoming/", suffixes=(".json", ".csv"), gzip=True))
    assert filters == (
        KeyFilter("incoming/", ".json"),
        KeyFilter("incoming/", ".csv"),
        KeyFilter("incoming/", ".json.gz"),
        KeyFilter("incoming/", ".csv.gz"),
    )


def test_duplicate_suffixes_collapse_to_one_filter() -> None:
    filters = key_filters(PipelineSettings(suffixes=(".json", ".json"), gzip=False))
    assert filters == (KeyFilter("incoming/", ".json"),)


@pytest.mark.parametrize(
    ("suffixes", "gzip", "kept"),
    [
        ((".json", "data.json"), False, (".json",)),
        ((".json", "data.json"), True, (".json", ".json.gz")),
        ((".gz", ".json"), True, (".gz", ".json")),
    ],
)
def test_a_suffix_another_covers_adds_no_filter_so_s3_sees_no_overlap(
    suffixes: tuple[str, ...], gzip: bool, kept: tuple[str, ...]
) -> None:
    # S3 refuses overlapping filters; 'data.json' under '.json' (or '.json.gz' under '.gz')
    # adds no key, so it is left out instead of refused (issue 9 item 5 changed this: before,
    # synth refused these suffixes)
    filters = key_filters(PipelineSettings(suffixes=suffixes, gzip=gzip))
    assert filters == tuple(KeyFilter("incoming/", s) for s in kept)


enums = st.sampled_from
pipelines = st.builds(
    PipelineSettings,
    prefix=st.from_regex(r"[a-z0-9_-]{1,10}/", fullmatch=True),
    suffixes=st.lists(st.from_regex(r"\.[a-z]{1,6}", fullmatch=True), min_size=1, max_size=4, unique=True).map(tuple),
    gzip=st.booleans(),
    records=enums(list(RecordMode)),
    on_conflict=enums(list(ConflictPolicy)),
    on_bad_record=enums(list(BadRecordPolicy)),
    max_object_bytes=st.integers(1, 10**10),
    retries=st.integers(1, 10),
    backoff_base_seconds=st.floats(0, 10, allow_nan=False),
    batch_size=st.integers(1, 1000),
)


@given(pipelines)
def test_the_function_reads_back_the_pipeline_settings_it_was_given(pipeline: PipelineSettings) -> None:
    # GIVEN any pipeline settings / WHEN rendered into the function's environment and read back
    assert settings_from_env(pipeline_environment(pipeline)).pipeline == pipeline


def test_function_environment_carries_the_handler_contract() -> None:
    env = function_environment(Settings(), table_name="events", topic_arn="arn:topic", dlq_url="https://q")
    assert env["TABLE_NAME"] == "events"
    assert env["TOPIC_ARN"] == "arn:topic"
    assert env["DLQ_URL"] == "https://q"
    assert env["POWERTOOLS_SERVICE_NAME"] == "dockline"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Dockline"
    assert env["DOCKLINE_PREFIX"] == "incoming/"
    assert env["DOCKLINE_SUFFIXES"] == ".json,.jsonl,.ndjson,.csv"


def test_defaults_are_valid_for_aws() -> None:
    validate_for_aws(Settings())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stack_name": "1dockline"}, "stack_name"),
        ({"stack_name": "dock_line"}, "stack_name"),
        ({"stack_name": "D" * 40}, "bucket_name"),
        ({"stack_name": "D" * 60, "bucket_name": "fine-name"}, "too long"),
        ({"bucket_name": "Upper_Case"}, "bucket_name"),
        ({"bucket_name": "ab"}, "bucket_name"),
        ({"timeout_seconds": 901}, "timeout_seconds"),
        ({"memory_mb": 64}, "memory_mb"),
        ({"reserved_concurrency": 0}, "reserved_concurrency"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 20, "batching_window_seconds": 0}, "batching_window_seconds"),
        ({"batching_window_seconds": 301}, "batching_window_seconds"),
        ({"max_receive_count": 0}, "max_receive_count"),
        ({"log_retention_days": 0}, "log_retention_days"),
        ({"subscriptions": (AwsSubscription("email", "not-an-address"),)}, "email"),
        ({"subscriptions": (AwsSubscription("sms", "5550100"),)}, "E.164"),
        ({"subscriptions": (AwsSubscription("https", "http://insecure"),)}, "https"),
        ({"subscriptions": (AwsSubscription("sqs", "my-queue"),)}, "ARN"),
    ],
)
def test_settings_aws_cannot_take_are_refused_with_one_line(change: dict, message: str) -> None:
    settings = Settings(aws=replace(AwsSettings(), **change))
    with pytest.raises(ConfigError, match=message) as caught:
        validate_for_aws(settings)
    assert "\n" not in str(caught.value)
