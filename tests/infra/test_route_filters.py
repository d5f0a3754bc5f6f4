"""Issue 9 item 5: S3 notification filters and the read permission from routes, without CDK.

S3 refuses a notification configuration in which two filters of one event type overlap:
one prefix starts with the other and one suffix ends with the other ("Configuration is
ambiguously defined. Cannot have overlapping suffixes in two rules if the prefixes are
overlapping for the same event type")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockline.config import PipelineSettings
from dockline.errors import ConfigError
from dockline.infra.wiring import KeyFilter, key_filters, read_prefixes
from dockline.routes import Route


def routed(*routes: Route) -> PipelineSettings:
    return PipelineSettings(routes=routes)


def s3_overlap(a: KeyFilter, b: KeyFilter) -> bool:
    """S3's rule, written out independently of wiring.py."""
    prefixes = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
    return prefixes and (a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix))


def test_item5_a_route_inside_another_adds_no_filter_and_no_read_grant() -> None:
    # GIVEN a specific route first and a general one after it, as routes are written
    pipeline = routed(
        Route(name="orders", prefix="incoming/orders/", suffixes=(".json",)),
        Route(name="rest", prefix="incoming/", suffixes=(".json", ".csv")),
    )
    # THEN the general route's filters deliver every key of both: the specific ones are left out
    assert key_filters(pipeline) == (
        KeyFilter("incoming/", ".json"),
        KeyFilter("incoming/", ".csv"),
        KeyFilter("incoming/", ".json.gz"),
        KeyFilter("incoming/", ".csv.gz"),
    )
    assert read_prefixes(pipeline) == ("incoming/",)


def test_item5_routes_under_several_prefixes_get_a_filter_and_a_read_grant_each() -> None:
    pipeline = routed(
        Route(name="cloudtrail", prefix="AWSLogs/", suffixes=(".json.gz",)),
        Route(name="sensors", prefix="iot/", suffixes=(".csv",)),
    )
    assert key_filters(pipeline) == (
        KeyFilter("AWSLogs/", ".json.gz"),
        KeyFilter("iot/", ".csv"),
        KeyFilter("iot/", ".csv.gz"),
    )
    assert read_prefixes(pipeline) == ("AWSLogs/", "iot/")


def test_item5_a_whole_bucket_route_reads_the_whole_bucket() -> None:
    pipeline = routed(
        Route(name="csv", prefix="iot/", suffixes=(".csv",)),
        Route(name="all", prefix="", suffixes=(".json",)),
    )
    assert KeyFilter("", ".json") in key_filters(pipeline)
    assert read_prefixes(pipeline) == ("",)


def test_item5_filters_that_overlap_without_one_covering_the_other_are_one_line_naming_both_routes() -> None:
    # GIVEN 'web' under 'app''s prefix, with a suffix that 'app''s ends with: S3 would refuse
    # both filters together, and no one filter delivers exactly their keys
    pipeline = routed(
        Route(name="app", prefix="logs/", suffixes=(".app.json",)),
        Route(name="web", prefix="logs/web/", suffixes=(".json",)),
    )
    with pytest.raises(ConfigError) as caught:
        key_filters(pipeline)
    message = str(caught.value)
    assert message.startswith("[[routes]] 'app' and 'web': their S3 notification filters")
    assert "'logs/' + '.app.json'" in message and "'logs/web/' + '.json'" in message
    assert "\n" not in message


prefixes = st.sampled_from(["", "a/", "a/b/", "b/", "a/bc/"])
suffix_lists = st.lists(st.sampled_from([".json", "x.json", ".csv", ".jsonl", ".json.gz"]), min_size=1, max_size=3)
route_lists = st.lists(st.tuples(prefixes, suffix_lists), min_size=1, max_size=4)
keys = st.tuples(
    st.sampled_from(["", "a/", "a/b/", "a/bc/", "b/", "c/"]),
    st.sampled_from(["f", "fx", ""]),
    st.sampled_from([".json", ".csv", ".jsonl", ".json.gz", ".csv.gz", ".jsonl.gz", ".txt"]),
).map("".join)


@given(route_lists, st.lists(keys, max_size=20))
def test_item5_filters_s3_accepts_deliver_exactly_the_keys_the_routes_take(
    spec: list[tuple[str, list[str]]], sample: list[str]
) -> None:
    pipeline = routed(
        *(Route(name=f"r{i}", prefix=prefix, suffixes=tuple(suffixes)) for i, (prefix, suffixes) in enumerate(spec))
    )
    try:
        filters = key_filters(pipeline)
    except ConfigError:
        return  # refused at synth: S3 would have refused it at deploy
    # THEN no two filters overlap (S3 accepts them) ...
    assert not any(s3_overlap(a, b) for i, a in enumerate(filters) for b in filters[i + 1 :])
    # ... and a key reaches the function exactly when a route takes it
    for key in sample:
        delivered = any(key.startswith(f.prefix) and key.endswith(f.suffix) for f in filters)
        assert delivered == pipeline.matches(key), key
    # AND the function may read every delivered key
    for key in sample:
        if pipeline.matches(key):
            assert any(key.startswith(p) for p in read_prefixes(pipeline)), key


def test_item5_synth_refuses_overlapping_route_filters_in_one_line_before_node_starts(tmp_path: Path) -> None:
    # GIVEN a project whose routes S3 could not be configured for
    (tmp_path / "dockline.toml").write_text(
        '[[routes]]\nname = "app"\nprefix = "logs/"\nsuffixes = [".app.json"]\n\n'
        '[[routes]]\nname = "web"\nprefix = "logs/web/"\nsuffixes = [".json"]\n'
    )
    # WHEN a user synthesizes it
    result = subprocess.run(
        [sys.executable, "-m", "dockline", "synth", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PATH": ""},  # no node on PATH: the refusal comes first
        check=False,
        timeout=60,
    )
    # THEN it fails with one line naming both routes, and writes nothing
    assert result.returncode != 0
    assert result.stderr.startswith("dockline: error: [[routes]] 'app' and 'web': their S3 notification filters")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
