"""Record formats on the local engine through the CLI: JSON Lines, CSV, gzip, a bad record."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path


def test_jsonl_gz_csv_and_split_json_give_one_item_per_record(cli, tmp_path: Path) -> None:
    # GIVEN a gzipped JSON Lines file, a CSV file with a schema, and a JSON array in split mode
    lines = b"".join(b'{"id": "r-%d", "temp": %d.5}\n' % (i, i) for i in range(50))
    (tmp_path / "readings.jsonl.gz").write_bytes(gzip.compress(lines))
    (tmp_path / "orders.csv").write_text("id,qty,price\nA,2,19.99\nB,1,5.10\n")
    (tmp_path / "batch.json").write_text('[{"id": "x"}, {"id": "y"}]')
    (tmp_path / "dockline.toml").write_text(
        '[pipeline]\nrecords = "split"\ncsv_schema = { qty = "int", price = "decimal" }\n'
    )
    for name in ("readings.jsonl.gz", "orders.csv", "batch.json"):
        cli("put", str(tmp_path / name))
    # WHEN the pipeline runs once
    cli("run", "--once")
    # THEN every record is an item, with exact numbers and typed CSV values
    items = {i["pk"]: i for i in json.loads(cli("ledger", "list", "--all", "--json").stdout)}
    assert len(items) == 50 + 2 + 2
    assert json.loads(cli("ledger", "get", "A", "--json").stdout, parse_float=Decimal)["payload"] == {
        "id": "A",
        "qty": 2,
        "price": Decimal("19.99"),
    }
    assert items["r-7"]["record_index"] == 8
    files = {f["key"]: f for f in json.loads(cli("files", "list", "--json").stdout)}
    assert files["incoming/readings.jsonl.gz"]["records"] == 50
    assert {f["status"] for f in files.values()} == {"processed"}
    # AND one summary notification per file, never one per record
    notes = json.loads(cli("notifications", "list", "--json").stdout)
    assert len(notes) == 3
    summary = next(n for n in notes if n["attributes"]["key"] == "incoming/readings.jsonl.gz")
    assert summary["attributes"]["records"] == "50"
    assert "50 records written" in summary["message"]


def test_a_bad_record_fails_the_file_or_is_skipped_and_listed(cli, tmp_path: Path) -> None:
    text = '{"id": "a"}\n{"id": "b", "v": \n{"id": "c"}\n'
    (tmp_path / "strict.ndjson").write_text(text)
    cli("put", str(tmp_path / "strict.ndjson"))
    cli("run", "--once")
    [strict] = json.loads(cli("files", "list", "--json").stdout)
    assert strict["status"] == "failed"
    assert strict["error"].startswith("line 2, column 17: truncated JSON")  # issue 10: the line named once

    (tmp_path / "dockline.toml").write_text('[pipeline]\non_bad_record = "skip"\n')
    (tmp_path / "lenient.ndjson").write_text(text)
    cli("put", str(tmp_path / "lenient.ndjson"))
    cli("run", "--once")
    lenient = next(f for f in json.loads(cli("files", "list", "--json").stdout) if f["key"].endswith("lenient.ndjson"))
    assert lenient["status"] == "processed"
    assert lenient["records"] == 2
    assert lenient["skipped_total"] == 1
    assert lenient["skipped"][0]["index"] == 2 and "truncated JSON" in lenient["skipped"][0]["reason"]
    table = cli("files", "list").stdout
    assert "skipped line 2: truncated JSON" in table
