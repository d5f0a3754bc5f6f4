"""Issue 9 item 8 on the AWS engine's core (moto): each example's configuration and samples,
through the Lambda handler, give the same items as the local run. (The packaged function
reading the example's dockline.toml itself comes with the packaging change.)"""

from __future__ import annotations

import pytest

from dockline.aws.handler import handle
from dockline.config import load_settings
from tests.aws.world import World
from tests.unit.examples_expected import COUNTS, EXAMPLES, ITEMS, NAMES, checked, samples


@pytest.mark.parametrize("name", NAMES)
def test_example_through_the_handler_gives_the_same_items(moto: None, name: str) -> None:
    world = World(load_settings(EXAMPLES / name / "dockline.toml").pipeline)
    files = samples(name)
    for key, body in files.items():
        world.put(key, body)
    result = handle(world.event(*files), world.engine)
    assert [f["status"] for f in result["files"]] == ["processed"] * len(files)
    items = {pk: item["payload"] for pk, item in world.records().items()}
    assert checked(name, items) == ITEMS[name]
    for key in files:  # each sample holds many records: its file marker records the counts
        marker = world.marker(key)
        assert marker is not None
        assert (marker["records"], marker.get("dropped", 0), marker.get("skipped_count", 0)) == COUNTS[name]
