"""Issue 9 item 5: the function carries the routes. The stack synthesized from a project's
dockline.toml ships that configuration and the schema it names with the function's code, and
nothing else of the project; the handler imported from that code alone, in a fresh interpreter
on moto, stores the same items as the local engine."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from dockline.aws import handler
from dockline.config import LocalSettings, load_settings
from dockline.local.engine import LocalEngine
from tests.infra.cfn import function, main_bucket, props, render, statement
from tests.infra.conftest import ROUTES_PROJECT, Synthesized, write_project
from tests.infra.lambda_asset import foreign_modules, run_handler_from_asset
from tests.infra.test_linters import SERVERLESS_RULES, has_serverless_rules
from tests.infra.test_wiring_moto import Deployment, aws_env, s3_keys
from tests.local.conftest import drop, items
from tests.unit.routes_corpus import FILES, comparable, expected

assert aws_env  # the fixture (fake credentials, moto) that the S3 test below uses


def run_stack_handler(stack: Synthesized, tmp_path: Path) -> dict[str, Any]:
    """The corpus through the handler of ``stack``'s asset, in the function's environment
    (its literal variables; the table and topic are moto's)."""
    variables = props(stack.body["Resources"][function(stack.body)])["Environment"]["Variables"]
    env = {name: value for name, value in variables.items() if isinstance(value, str)}
    return run_handler_from_asset(function_asset(stack), FILES, tmp_path, env=env)


def function_asset(stack: Synthesized) -> Path:
    """The folder CDK zips as the function's code (named in the stack's asset manifest)."""
    key = props(stack.body["Resources"][function(stack.body)])["Code"]["S3Key"]
    manifest = json.loads(stack.path.with_name(f"{stack.settings.aws.stack_name}.assets.json").read_text())
    return stack.path.parent / manifest["files"][key.removesuffix(".zip")]["source"]["path"]


def outside_dockline(asset: Path) -> list[str]:
    """Every file of the function's code that is not part of the dockline package."""
    found = (p.relative_to(asset) for p in asset.rglob("*") if p.is_file())
    return sorted(p.as_posix() for p in found if p.parts[0] != "dockline")


def local_items(project_config: Path, data_dir: Path) -> dict[str, tuple[str, str, int | None]]:
    """The corpus through the local engine with the project's own dockline.toml."""
    settings = load_settings(project_config)
    engine = LocalEngine(data_dir, replace(settings, local=LocalSettings(settle_seconds=0.0)))
    try:
        for key, body in FILES.items():
            drop(engine, key, body)
        engine.run_once()
        return {pk: comparable(i["payload"], i.get("route"), i.get("record_index")) for pk, i in items(engine).items()}
    finally:
        engine.db.close()


@pytest.mark.slow
def test_item5_the_handler_imported_from_the_asset_alone_stores_what_the_local_engine_stores(
    synthesized: dict[str, Synthesized], tmp_path: Path
) -> None:
    # GIVEN the stack synthesized from a project's dockline.toml (a /Records selector, a typed
    # semicolon CSV with blank cells, a JSON Schema, composite ids)
    asset = function_asset(synthesized["routes"])
    # WHEN a fresh interpreter imports the handler from the asset alone and processes the corpus on moto
    seen = run_stack_handler(synthesized["routes"], tmp_path)
    # THEN dockline came from the asset, and no module from anywhere but the asset, the standard
    # library and site-packages was loaded (not the checkout's src/, not the project folder)
    assert Path(seen["dockline"]).resolve().is_relative_to(asset.resolve())
    assert foreign_modules(seen, asset) == []
    # AND every routed file settled, the one no route takes was skipped
    assert {f["key"]: f["status"] for f in seen["result"]["files"]} == {
        k: "processed" for k in FILES if k != "elsewhere/ignored.json"
    }
    # AND the items are the local engine's, typed CSV cells and /Records splitting included
    found = {pk: tuple(v) for pk, v in seen["items"].items()}
    project = write_project(tmp_path / "project", ROUTES_PROJECT)
    assert found == local_items(project, tmp_path / "data")
    assert found == expected()
    # (typed cells; the blank one is null)
    assert found["iot/2026/air.csv#2"][0] == '{"humidity":null,"sensor_id":1,"temperature":21.5}'


def test_item5_the_asset_holds_the_config_and_its_schema_and_nothing_else_of_the_project(
    synthesized: dict[str, Synthesized],
) -> None:
    # GIVEN the project folder held notes.py, secrets.env, data/ and .git/ beside dockline.toml
    asset = function_asset(synthesized["routes"])
    # THEN the function's code holds, beside the dockline package, the config, its schema and its transform module only
    assert outside_dockline(asset) == ["corpus_transforms.py", "dockline.toml", "order.json"]
    # AND the packaged config is [pipeline] and [[routes]]: no [local] (its webhook token), no [aws]
    packaged = (asset / "dockline.toml").read_text()
    assert "local-only-token" not in packaged
    assert "[local" not in packaged and "[aws" not in packaged
    # AND it loads to the routes the project's file has (csv_schema included)
    routes = load_settings(asset / "dockline.toml").pipeline.routes
    assert [r.name for r in routes] == ["cloudtrail", "sensors", "orders", "plain", "shop"]
    assert dict(routes[1].csv_schema) == {"temperature": "decimal", "humidity": "decimal", "sensor_id": "int"}


def test_item5_a_packaged_config_replaces_the_pipeline_variables(synthesized: dict[str, Synthesized]) -> None:
    routed = synthesized["routes"]
    variables = props(routed.body["Resources"][function(routed.body)])["Environment"]["Variables"]
    # THEN the resource names still come from the stack, the pipeline settings from the file only
    assert {"TABLE_NAME", "TOPIC_ARN", "DLQ_URL", "DOCKLINE_MAX_RECEIVE_COUNT"} <= set(variables)
    assert [name for name in variables if name.startswith("DOCKLINE_") and name != "DOCKLINE_MAX_RECEIVE_COUNT"] == []


def test_item5_one_notification_filter_per_route_prefix_and_suffix(synthesized: dict[str, Synthesized]) -> None:
    body = synthesized["routes"].body
    configs = props(body["Resources"][main_bucket(body)])["NotificationConfiguration"]["QueueConfigurations"]
    filters = [{r["Name"]: r["Value"] for r in c["Filter"]["S3Key"]["Rules"]} for c in configs]
    assert filters == [
        {"prefix": "AWSLogs/", "suffix": ".json.gz"},
        {"prefix": "iot/", "suffix": ".csv"},
        {"prefix": "iot/", "suffix": ".csv.gz"},
        {"prefix": "incoming/", "suffix": ".json"},
        {"prefix": "incoming/", "suffix": ".jsonl"},
        {"prefix": "incoming/", "suffix": ".json.gz"},
        {"prefix": "incoming/", "suffix": ".jsonl.gz"},
        {"prefix": "plain/", "suffix": ".jsonl"},
        {"prefix": "plain/", "suffix": ".jsonl.gz"},
        {"prefix": "shop/", "suffix": ".jsonl"},
        {"prefix": "shop/", "suffix": ".jsonl.gz"},
    ]


def test_item5_the_function_reads_under_every_route_prefix_and_nowhere_else(
    synthesized: dict[str, Synthesized],
) -> None:
    stmt = statement(synthesized["routes"].body, "ReadLandedFiles")
    bucket = "routed-${AWS::AccountId}-${AWS::Region}"
    assert sorted(render(r) for r in stmt["Resource"]) == sorted(
        f"arn:${{AWS::Partition}}:s3:::{bucket}/{prefix}*"
        for prefix in ("AWSLogs/", "iot/", "incoming/", "plain/", "shop/")
    )


@pytest.mark.usefixtures("aws_env")
def test_item5_s3_sends_the_function_exactly_the_keys_the_routes_take(
    synthesized: dict[str, Synthesized], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the routes stack rebuilt in moto from its template (its filters, its environment),
    # the function reading the packaged dockline.toml
    stack = synthesized["routes"]
    deployment = Deployment(stack, monkeypatch)
    monkeypatch.setenv("DOCKLINE_CONFIG", str(function_asset(stack) / "dockline.toml"))
    # WHEN the corpus lands in the bucket
    for key, body in FILES.items():
        deployment.s3.put_object(Bucket=deployment.bucket, Key=key, Body=body)
    messages = deployment.drain(deployment.queue_url)
    # THEN S3 queued an event for each routed file and none for the key no route takes
    assert sorted(s3_keys(messages)) == sorted(k for k in FILES if k != "elsewhere/ignored.json")
    # AND the handler, given those messages, stores the corpus's items
    assert handler.lambda_handler(deployment.sqs_event(messages), None) == {"batchItemFailures": []}
    items = deployment.dynamodb.scan(TableName=deployment.table)["Items"]
    des = TypeDeserializer()
    stored = {
        i["pk"]["S"]: {k: des.deserialize(v) for k, v in i.items()}
        for i in items
        if not i["pk"]["S"].startswith("dockline#")
    }
    assert {pk: comparable(i["payload"], i["route"], i.get("record_index")) for pk, i in stored.items()} == expected()


def test_item5_cfn_lint_finds_no_error_in_the_routes_stack(synthesized: dict[str, Synthesized]) -> None:
    # (checkov runs on every synthesized template, this one included: test_linters.py)
    command = [sys.executable, "-m", "cfnlint", "--format", "json"]
    if has_serverless_rules():
        command += ["--append-rules", SERVERLESS_RULES]
    result = subprocess.run(
        [*command, "--", str(synthesized["routes"].path)], capture_output=True, text=True, check=False
    )
    errors = [m for m in json.loads(result.stdout or "[]") if m["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)
    assert result.returncode & 2 == 0, result.stderr
