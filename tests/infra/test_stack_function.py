"""The processing function: runtime, sizing, environment, logs, tracing and its code asset."""

from __future__ import annotations

import re

from aws_cdk.assertions import Match

from dockline.config import settings_from_env
from tests.infra.cfn import dead_letter_queue, function, only, props, render
from tests.infra.conftest import Synthesized


def fn_props(variant: Synthesized) -> dict:
    return props(variant.body["Resources"][function(variant.body)])


def test_function_runs_a_current_python_on_arm64_with_the_dockline_handler(any_variant: Synthesized) -> None:
    p = fn_props(any_variant)
    runtime = re.fullmatch(r"python3\.(\d+)", p["Runtime"])
    assert runtime, p["Runtime"]
    assert int(runtime.group(1)) >= 12  # 3.12+: supported, and Powertools v3 layers exist for it
    assert p["Architectures"] == ["arm64"]
    assert p["Handler"] == "dockline.aws.handler.lambda_handler"


def test_function_uses_the_powertools_v3_layer_for_its_runtime_and_arch(any_variant: Synthesized) -> None:
    p = fn_props(any_variant)
    (layer,) = p["Layers"]
    python = p["Runtime"].replace(".", "")
    assert re.fullmatch(
        rf"arn:aws:lambda:\$\{{AWS::Region\}}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{python}-arm64:\d+",
        render(layer),
    ), render(layer)


def test_function_concurrency_timeout_and_memory_come_from_settings(any_variant: Synthesized) -> None:
    aws = any_variant.settings.aws
    any_variant.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "ReservedConcurrentExecutions": aws.reserved_concurrency,
            "Timeout": aws.timeout_seconds,
            "MemorySize": aws.memory_mb,
        },
    )


def test_function_environment_names_table_topic_dlq_and_pipeline_settings(any_variant: Synthesized) -> None:
    body = any_variant.body
    table = only(body, "AWS::DynamoDB::Table")
    topic = only(body, "AWS::SNS::Topic", lambda r: props(r)["TopicName"] == any_variant.settings.aws.topic_name)
    variables = fn_props(any_variant)["Environment"]["Variables"]
    assert variables["TABLE_NAME"] == {"Ref": table}
    assert variables["TOPIC_ARN"] == {"Ref": topic}
    assert variables["DLQ_URL"] == {"Ref": dead_letter_queue(body)}
    assert variables["POWERTOOLS_SERVICE_NAME"] == "dockline"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Dockline"
    assert variables["DOCKLINE_PREFIX"] == any_variant.settings.pipeline.prefix
    assert variables["DOCKLINE_SUFFIXES"].split(",") == list(any_variant.settings.pipeline.suffixes)
    # AND in queue mode it knows the receive count at which SQS gives up, to settle the file first
    if any_variant.mode == "queue":
        assert variables["DOCKLINE_MAX_RECEIVE_COUNT"] == str(any_variant.settings.aws.max_receive_count)
    else:
        assert "DOCKLINE_MAX_RECEIVE_COUNT" not in variables
    # AND the function reads back exactly the pipeline settings the stack was built from
    literal = {k: v for k, v in variables.items() if isinstance(v, str)}
    assert settings_from_env(literal).pipeline == any_variant.settings.pipeline


def test_function_logs_json_to_its_own_encrypted_log_group_with_retention(any_variant: Synthesized) -> None:
    aws = any_variant.settings.aws
    body = any_variant.body
    log_group = only(body, "AWS::Logs::LogGroup")
    assert fn_props(any_variant)["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": {"Ref": log_group},
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "WARN",
    }
    expected_days = {30: 30, 14: 14}[aws.log_retention_days]
    any_variant.template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": f"/aws/lambda/{aws.stack_name}-processor",
            "RetentionInDays": expected_days,
            "KmsKeyId": {"Fn::GetAtt": [only(body, "AWS::KMS::Key"), "Arn"]},
        },
    )


def test_tracing_follows_the_setting(any_variant: Synthesized) -> None:
    tracing = fn_props(any_variant).get("TracingConfig")
    if any_variant.settings.aws.tracing:
        assert tracing == {"Mode": "Active"}
    else:
        assert tracing in (None, {"Mode": "PassThrough"})


def test_function_stops_recursive_loops(any_variant: Synthesized) -> None:
    any_variant.template.has_resource_properties("AWS::Lambda::Function", {"RecursiveLoop": "Terminate"})


def test_function_code_is_the_dockline_package_without_infra_or_cli(any_variant: Synthesized) -> None:
    # GIVEN the asset folder synth wrote next to the template (named after the S3 key's hash)
    key = fn_props(any_variant)["Code"]["S3Key"]
    asset = any_variant.path.parent / ("asset." + key.removesuffix(".zip"))
    package = asset / "dockline"
    # THEN it holds the handler and the core, and nothing that imports aws_cdk, typer or watchdog
    assert (package / "aws" / "handler.py").is_file()
    assert (package / "config.py").is_file()
    assert not (package / "infra").exists()
    assert not (package / "cli").exists()
    assert not (package / "local").exists()
    assert not list(package.rglob("__pycache__"))


def test_checkov_suppressions_on_the_function_have_reasons(any_variant: Synthesized) -> None:
    skips = any_variant.body["Resources"][function(any_variant.body)]["Metadata"]["checkov"]["skip"]
    assert {s["id"] for s in skips} == {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}
    assert all(len(s["comment"]) > 20 for s in skips)


def test_no_function_has_a_dead_letter_config_as_failures_go_through_the_trigger(default: Synthesized) -> None:
    default.template.has_resource_properties("AWS::Lambda::Function", {"DeadLetterConfig": Match.absent()})
