"""Issue 9 item 3: a route's transform, ``module:function``, and its contract: a dict is the
record, a list several records, None drops (counted), an exception a bad record with a
one-line reason, ``dockline.TransientError`` a retry. Through the core on the memory ledger."""

from __future__ import annotations

import logging
import tomllib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import dockline
from dockline.config import Settings, parse_settings
from dockline.errors import ConfigError
from dockline.lifecycle import Lifecycle, Step, Work
from dockline.memory import MemoryDeadLetters, MemoryLedger, MemoryStore, MemoryTopic
from dockline.models import ObjectRef, Outcome, Status
from dockline.pipeline import Pipeline


class World:
    """A memory bucket, ledger and topic around one route whose transform is ``source``."""

    def __init__(self, folder: Path, source: str, *, route: str = "", function: str = "f") -> None:
        self.module = f"user_tx_{uuid.uuid4().hex[:10]}"  # fresh: modules are cached by name
        (folder / f"{self.module}.py").write_text(source)
        text = (
            "[pipeline]\nretries = 3\nbackoff_base_seconds = 0.001\nbackoff_max_seconds = 0.001\n"
            '[[routes]]\nname = "orders"\nprefix = "in/"\nsuffixes = [".json", ".jsonl", ".csv"]\n'
            f'transform = "{self.module}:{function}"\n{route}'
        )
        self.settings: Settings = parse_settings(tomllib.loads(text), source=folder / "dockline.toml")
        self.store, self.ledger, self.topic = MemoryStore(), MemoryLedger(), MemoryTopic()
        self.pipeline = Pipeline(
            settings=self.settings.pipeline,
            store=self.store,
            ledger=self.ledger,
            notifier=self.topic,
            dead_letters=MemoryDeadLetters(),
            clock=lambda: datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        )

    def run(self, key: str, body: bytes, *, event_time: str | None = None) -> Outcome:
        self.store.put("bkt", key, body)
        return self.pipeline.process(ObjectRef("bkt", key, "v1", event_time=event_time))

    def payloads(self) -> dict[str, Any]:
        return {pk: item.record.payload for pk, item in self.ledger.items.items()}


def test_transform_dict_becomes_the_record_with_exact_numbers(tmp_path: Path) -> None:
    # GIVEN a transform computing a total from prices that a float would round
    world = World(tmp_path, "def f(r, ctx):\n    return {**r, 'total': r['qty'] * r['price']}\n")
    # WHEN an order with price 1.10 (a double's 1.1000000000000000888) is processed
    outcome = world.run("in/o.json", b'{"id": "o-1", "qty": 3, "price": 1.10}')
    # THEN the stored record is the transform's, its total exactly 3.30
    assert outcome.status is Status.PROCESSED and outcome.pk == "o-1"
    assert world.payloads()["o-1"]["total"] == Decimal("3.30")


def test_transform_receives_decimals_never_floats(tmp_path: Path) -> None:
    # GIVEN a transform that records the type of each number it gets
    world = World(tmp_path, "def f(r, ctx):\n    return {'id': r['id'], 'types': [type(v).__name__ for v in r['n']]}\n")
    # WHEN short numbers (orjson's fast path reads them as floats) arrive in JSON Lines
    world.run("in/a.jsonl", b'{"id": "a", "n": [1.5, 2, 0.1, 12345678901234567890.25]}\n')
    # THEN the transform saw Decimals and ints only
    assert world.payloads()["a"]["types"] == ["Decimal", "int", "Decimal", "Decimal"]


def test_transform_context_names_route_key_bucket_version_line_and_time(tmp_path: Path) -> None:
    source = (
        "def f(r, ctx):\n"
        "    return {'id': r['id'], 'ctx': [ctx.route, ctx.key, ctx.bucket, ctx.version, ctx.line, ctx.index,"
        " ctx.received_at]}\n"
    )
    world = World(tmp_path, source)
    world.run("in/a.jsonl", b'{"id": "x"}\n\n{"id": "y"}\n', event_time="2026-11-30T08:00:00.000Z")
    world.run("in/b.csv", b"id,v\nz,1\n")
    got = {pk: p["ctx"] for pk, p in world.payloads().items()}
    # THEN each record's context: its line (blank lines count), the S3 event time when known,
    # else the time this run picked the file up
    assert got == {
        "x": ["orders", "in/a.jsonl", "bkt", "v1", 1, 1, "2026-11-30T08:00:00.000Z"],
        "y": ["orders", "in/a.jsonl", "bkt", "v1", 3, 3, "2026-11-30T08:00:00.000Z"],
        "z": ["orders", "in/b.csv", "bkt", "v1", 2, 2, "2026-12-01T09:30:00.000Z"],
    }


def test_transform_list_gives_several_records_each_keyed_by_the_id_selector(tmp_path: Path) -> None:
    # GIVEN a route with id /sku whose transform splits an order into its lines
    source = "def f(r, ctx):\n    return [{'sku': l['sku'], 'order': r['order']} for l in r['lines']]\n"
    world = World(tmp_path, source, route='id = "/sku"\n')
    outcome = world.run("in/o.json", b'{"order": 7, "lines": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]}')
    # THEN three records, keyed by their own ids; the file has no single pk
    assert set(world.payloads()) == {"a", "b", "c"}
    assert (outcome.status, outcome.records, outcome.pk) == (Status.PROCESSED, 3, None)


def test_transform_list_without_ids_numbers_each_output_after_its_place(tmp_path: Path) -> None:
    # GIVEN the default id (/id) and outputs without one
    world = World(tmp_path, "def f(r, ctx):\n    return [{'half': 1}, {'half': 2}]\n")
    world.run("in/a.jsonl", b'{"x": 1}\n{"x": 2}\n')
    # THEN each output's pk is its line's, numbered: none collides with another
    assert set(world.payloads()) == {"in/a.jsonl#1#1", "in/a.jsonl#1#2", "in/a.jsonl#2#1", "in/a.jsonl#2#2"}


def test_transform_none_drops_the_record_and_counts_it(tmp_path: Path) -> None:
    # GIVEN a transform that drops test orders
    world = World(tmp_path, "def f(r, ctx):\n    return None if r.get('test') else r\n")
    body = b'{"id": "a"}\n{"id": "t1", "test": true}\n{"id": "b"}\n{"id": "t2", "test": true}\n'
    outcome = world.run("in/a.jsonl", body)
    # THEN the kept records are written, the dropped ones counted on the outcome and in the message
    assert set(world.payloads()) == {"a", "b"}
    assert (outcome.status, outcome.records, outcome.dropped) == (Status.PROCESSED, 2, 2)
    assert world.ledger.files[("bkt", "in/a.jsonl", "v1")].dropped == 2
    [note] = world.topic.messages
    assert note.message == "New file processed: in/a.jsonl (2 records written, 2 dropped by the transform)"
    assert note.attributes["dropped"] == "2"


def test_transform_exception_is_a_bad_record_with_a_one_line_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a transform that raises on one record, on a route that skips bad records
    source = (
        "def f(r, ctx):\n    if r['qty'] < 0:\n"
        "        raise ValueError(f\"qty {r['qty']}\\nis negative\")\n    return r\n"
    )
    world = World(tmp_path, source, route='on_bad_record = "skip"\n')
    caplog.set_level(logging.DEBUG, logger="dockline")
    outcome = world.run("in/a.jsonl", b'{"id": "a", "qty": 1}\n{"id": "b", "qty": -2}\n')
    # THEN the other record is written; the bad one is skipped with the reason on one line
    assert set(world.payloads()) == {"a"}
    spec = f"{world.module}:f"
    assert [(b.index, b.reason) for b in outcome.skipped] == [
        (2, f"transform {spec} raised ValueError: qty -2 is negative")
    ]
    # AND the traceback went to the debug log only
    [logged] = [r for r in caplog.records if r.name == "dockline.transforms"]
    assert logged.levelno == logging.DEBUG and logged.exc_info is not None


def test_transform_exception_fails_the_file_under_fail_file(tmp_path: Path) -> None:
    world = World(tmp_path, "def f(r, ctx):\n    return r['missing']\n")
    outcome = world.run("in/o.json", b'{"id": "a"}')
    assert outcome.status is Status.FAILED
    assert outcome.error == f"transform {world.module}:f raised KeyError: 'missing'"
    assert world.payloads() == {}


@pytest.mark.parametrize(
    ("returned", "words"),
    [
        ("'text'", "returned a str"),
        ("[{'id': 'a'}, 3]", "a list holding an int at [1]"),
        ("{'id': 'a', 'tags': {1, 2}}", "cannot serialise"),
    ],
)
def test_transform_returning_what_cannot_be_a_record_is_a_bad_record(tmp_path: Path, returned: str, words: str) -> None:
    world = World(tmp_path, f"def f(r, ctx):\n    return {returned}\n")
    outcome = world.run("in/o.json", b'{"id": "a"}')
    assert outcome.status is Status.FAILED and outcome.error is not None
    assert outcome.error.startswith(f"transform {world.module}:f") and words in outcome.error, outcome.error


def test_transform_transient_error_is_retried_like_any_transient_error(tmp_path: Path) -> None:
    # GIVEN a transform whose lookup service fails twice, then answers
    source = (
        "import dockline\ncalls = []\n"
        "def f(r, ctx):\n    calls.append(1)\n"
        "    if len(calls) <= 2:\n        raise dockline.TransientError('lookup service timed out')\n"
        "    return {**r, 'enriched': True}\n"
    )
    world = World(tmp_path, source)
    # WHEN the file is processed
    outcome = world.run("in/o.json", b'{"id": "a"}')
    # THEN the pipeline retried it and the record was written on the third call
    assert outcome.status is Status.PROCESSED
    assert world.payloads()["a"] == {"id": "a", "enriched": True}


def test_transform_transient_error_that_persists_is_handed_back_then_given_up(tmp_path: Path) -> None:
    source = "import dockline\ndef f(r, ctx):\n    raise dockline.TransientError('lookup service down')\n"
    world = World(tmp_path, source)
    world.store.put("bkt", "in/o.json", b'{"id": "a"}')
    lifecycle = Lifecycle(world.pipeline)
    ref = ObjectRef("bkt", "in/o.json", "v1")
    # WHEN its retries run out: the file is handed back for a later attempt, not failed
    first = lifecycle.run(Work(ref))
    assert first.step is Step.RETRY and "lookup service down" in first.reason
    # AND on the last allowed delivery it is given up as failed, naming the reason
    last = lifecycle.run(Work(ref, attempt=5, give_up_after=5))
    assert last.step is Step.SETTLED and last.outcome is not None
    assert last.outcome.error == "gave up after 5 attempts: lookup service down"
    assert world.payloads() == {}


def test_transform_runs_after_the_schema_check(tmp_path: Path) -> None:
    # GIVEN a schema requiring qty >= 1 and a transform that would fix any qty
    (tmp_path / "s.json").write_text('{"properties": {"qty": {"minimum": 1}}}')
    world = World(tmp_path, "def f(r, ctx):\n    return {**r, 'qty': 1}\n", route='schema = "s.json"\n')
    outcome = world.run("in/o.json", b'{"id": "a", "qty": 0}')
    # THEN the record was refused on its own content, before the transform saw it
    assert outcome.status is Status.FAILED and outcome.error == "/qty: 0 is less than the minimum of 1"


def test_transient_error_is_exported_from_the_package() -> None:
    from dockline.errors import TransientError

    assert dockline.TransientError is TransientError
    assert "TransientError" in dockline.__all__


@pytest.mark.parametrize(
    ("spec", "source", "words"),
    [
        ("nomodule_here_9:f", None, ("cannot import 'nomodule_here_9'", "No module named")),
        ("{m}:g", "def f(r, ctx):\n    return r\n", ("has no 'g'",)),
        ("{m}:f", "f = 3\n", ("is int, not a function",)),
        ("{m}", "", ('must be "module:function"',)),
        ("{m}:f", "raise RuntimeError('no config\\nfound')\n", ("raised RuntimeError: no config found",)),
        ("{m}:f", "def f(:\n", ("raised SyntaxError",)),
    ],
)
def test_transform_config_errors_are_one_line_naming_route_and_field(
    tmp_path: Path, spec: str, source: str | None, words: tuple[str, ...]
) -> None:
    module = f"user_tx_{uuid.uuid4().hex[:10]}"
    if source is not None:
        (tmp_path / f"{module}.py").write_text(source)
    text = f'[[routes]]\nname = "orders"\nprefix = "in/"\ntransform = "{spec.format(m=module)}"\n'
    with pytest.raises(ConfigError) as caught:
        parse_settings(tomllib.loads(text), source=tmp_path / "dockline.toml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("[[routes]] 'orders' transform:"), message
    for word in words:
        assert word in message, (word, message)


def test_transform_module_may_be_a_package_beside_the_config(tmp_path: Path) -> None:
    # GIVEN shop/pipeline.py beside dockline.toml, as the issue's example names it
    package = f"shop_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "pipeline.py").write_text("def normalise_order(r, ctx):\n    return {**r, 'ok': 1}\n")
    text = f'[[routes]]\nname = "orders"\nprefix = "in/"\ntransform = "{package}.pipeline:normalise_order"\n'
    route = parse_settings(tomllib.loads(text), source=tmp_path / "dockline.toml").pipeline.routes[0]
    assert route.transform is not None and route.transform.spec == f"{package}.pipeline:normalise_order"
    assert not route.plain
