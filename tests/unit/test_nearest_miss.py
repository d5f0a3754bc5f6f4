"""Issue 9 item 7: for a key no route takes, the nearest route and why it missed."""

from __future__ import annotations

import pytest

from dockline.routes import Route, nearest_miss

ROUTES = (
    Route(name="orders", prefix="incoming/", suffixes=(".json", ".jsonl")),
    Route(name="sensors", prefix="iot/", suffixes=(".csv",)),
    Route(name="cloudtrail", prefix="AWSLogs/", suffixes=(".json.gz",)),
)


@pytest.mark.parametrize(
    ("key", "route", "why"),
    [
        ("Incoming/a.json", "orders", "case"),
        ("incoming/A.JSON", "orders", "case"),
        ("awslogs/1/x.json.gz", "cloudtrail", "case"),
        ("incoming/notes.txt", "orders", "suffix"),
        ("iot/readings.tsv", "sensors", "suffix"),
        ("orders.json", "orders", "prefix"),  # dropped beside the prefix folder
        ("data/iot.csv", "sensors", "prefix"),
        ("iotx/a.tsv", "sensors", "prefix and suffix"),  # shares "iot" with the sensors prefix
        ("incoming", "orders", "prefix and suffix"),
    ],
)
def test_nearest_route_and_why(key: str, route: str, why: str) -> None:
    miss = nearest_miss(ROUTES, key)
    assert miss is not None and (miss.route, miss.why) == (route, why), miss
    assert "\n" not in miss.detail and miss.route in miss.detail


def test_suffix_detail_names_the_key_suffix_and_the_routes() -> None:
    miss = nearest_miss(ROUTES, "incoming/2026/notes.tar.gz")
    assert miss is not None
    assert miss.detail == ".tar.gz is not one of route 'orders''s suffixes: .json, .jsonl (each also .gz)"


def test_no_routes_no_miss() -> None:
    assert nearest_miss((), "a.json") is None
