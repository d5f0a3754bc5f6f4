"""Issue 8 on the local engine, end to end: what the one lifecycle in the core fixed.

Real SQLite files and real bucket folders; each test names the numbered problem of
issue 8's "Why" it proves fixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from dockline.config import PipelineSettings
from dockline.local.engine import LocalEngine
from dockline.local.queries import list_items
from tests.local.conftest import drop, files_by_key, items, letters, messages, settings, the_file


def jsonl(*documents: object) -> str:
    return "".join(json.dumps(d) + "\n" for d in documents)


def test_why4_a_failed_multi_record_file_leaves_no_items(make_engine: Callable[..., LocalEngine]) -> None:
    # GIVEN records committed in batches of 2, and a bad line after the first two batches
    engine = make_engine(settings(pipeline=PipelineSettings(batch_size=2)))
    drop(engine, "incoming/orders.jsonl", jsonl(*({"id": f"o{i}", "qty": i} for i in range(1, 6))) + "{oops\n")
    # WHEN it is processed
    engine.run_once()
    # THEN the file failed, and not one of the records written before the bad line is left
    row = the_file(engine, "incoming/orders.jsonl")
    assert row["status"] == "failed"
    assert "line 6" in row["error"]
    assert items(engine) == {}
    assert list_items(engine.db) == []
    # AND a corrected re-upload is processed (it used to end as `conflict`, keeping the wrong values)
    drop(engine, "incoming/orders.jsonl", jsonl(*({"id": f"o{i}", "qty": i * 10} for i in range(1, 6))))
    engine.run_once()
    assert [row["status"] for row in files_by_key(engine)["incoming/orders.jsonl"]] == ["failed", "processed"]
    assert {pk: item["payload"]["qty"] for pk, item in items(engine).items()} == {f"o{i}": i * 10 for i in range(1, 6)}


def test_why14_one_id_twice_in_a_jsonl_file_is_a_conflict_and_the_first_line_is_kept(engine: LocalEngine) -> None:
    drop(engine, "incoming/twice.jsonl", jsonl({"id": "x", "v": 1}, {"id": "y"}, {"id": "x", "v": 2}))
    engine.run_once()
    row = the_file(engine, "incoming/twice.jsonl")
    assert row["status"] == "conflict"
    assert "line 3" in row["error"]
    assert items(engine)["x"]["payload"] == {"id": "x", "v": 1}


def test_why14_numbers_compare_by_value_and_are_stored_in_their_shortest_form(engine: LocalEngine) -> None:
    # GIVEN one number written three ways, in three files
    drop(engine, "incoming/a.json", '{"id": "p", "p": 26}')
    drop(engine, "incoming/b.json", '{"id": "p", "p": 26.0}')
    drop(engine, "incoming/c.json", '{"id": "q", "p": 26.00, "big": 12345678901234567890.000}')
    # WHEN they are processed
    engine.run_once()
    # THEN 26.0 is the same number as 26: a duplicate, not a conflict
    assert the_file(engine, "incoming/a.json")["status"] == "processed"
    assert the_file(engine, "incoming/b.json")["status"] == "duplicate"
    # AND 26.00 is stored as 26, a long integral decimal as its integer
    raw = engine.db.query("SELECT payload FROM items WHERE pk = 'q'")[0]["payload"]
    assert raw == '{"big":12345678901234567890,"id":"q","p":26}'


def test_why9_a_stale_dead_letter_is_removed_once_the_key_is_processed(engine: LocalEngine) -> None:
    # GIVEN a half-written copy that failed and was dead-lettered
    drop(engine, "incoming/a.json", '{"id": "a", "v": ')
    engine.run_once()
    assert [letter.ref.key for letter in letters(engine)] == ["incoming/a.json"]
    # WHEN the whole file is there and processed
    drop(engine, "incoming/a.json", '{"id": "a", "v": 1}')
    engine.run_once()
    # THEN the letter of the half copy is gone; only its failure notification remains in the history
    assert [row["status"] for row in files_by_key(engine)["incoming/a.json"]] == ["failed", "processed"]
    assert letters(engine) == []
    assert [m["attributes"]["status"] for m in messages(engine)] == ["failed", "processed"]
