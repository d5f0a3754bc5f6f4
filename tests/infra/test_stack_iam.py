"""One role, scoped to exactly what the handler calls. No '*' action; no '*' resource but X-Ray."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.cfn import (
    as_list,
    dead_letter_queue,
    input_queue,
    only,
    props,
    render,
    resources,
    role_statements,
    statement,
)
from tests.infra.conftest import Synthesized

XRAY_ONLY_ON_STAR = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_exactly_one_role_for_lambda_without_managed_policies(any_variant: Synthesized) -> None:
    any_variant.template.resource_count_is("AWS::IAM::Role", 1)
    any_variant.template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [Match.object_like({"Principal": {"Service": "lambda.amazonaws.com"}})]
            },
            # AWSLambdaBasicExecutionRole grants logs:* calls on "*": the role must not carry it
            "ManagedPolicyArns": Match.absent(),
        },
    )


def test_no_action_is_a_wildcard(any_variant: Synthesized) -> None:
    for stmt in role_statements(any_variant.body):
        for action in as_list(stmt["Action"]):
            assert action != "*" and not action.endswith(":*"), stmt


def test_only_xray_is_granted_on_every_resource(any_variant: Synthesized) -> None:
    for stmt in role_statements(any_variant.body):
        if "*" in as_list(stmt["Resource"]):
            assert set(as_list(stmt["Action"])) <= XRAY_ONLY_ON_STAR, stmt


def test_xray_is_granted_only_when_tracing_is_on(any_variant: Synthesized) -> None:
    actions = {a for s in role_statements(any_variant.body) for a in as_list(s["Action"])}
    assert (actions >= XRAY_ONLY_ON_STAR) is any_variant.settings.aws.tracing


def test_get_object_is_scoped_to_the_prefix(any_variant: Synthesized) -> None:
    stmt = statement(any_variant.body, "ReadLandedFiles")
    assert sorted(as_list(stmt["Action"])) == ["s3:GetObject", "s3:GetObjectVersion"]
    bucket = any_variant.settings.aws.bucket_name or "dockline-${AWS::AccountId}-${AWS::Region}"
    prefix = any_variant.settings.pipeline.prefix
    assert render(stmt["Resource"]) == f"arn:${{AWS::Partition}}:s3:::{bucket}/{prefix}*"


def test_no_other_s3_access(any_variant: Synthesized) -> None:
    s3_actions = {a for s in role_statements(any_variant.body) for a in as_list(s["Action"]) if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:GetObjectVersion"}


def test_dynamodb_item_calls_on_the_table_only(any_variant: Synthesized) -> None:
    stmt = statement(any_variant.body, "WriteLedger")
    table = only(any_variant.body, "AWS::DynamoDB::Table")
    assert sorted(as_list(stmt["Action"])) == sorted(
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem",
        ]
    )
    assert stmt["Resource"] == {"Fn::GetAtt": [table, "Arn"]}


def test_publish_on_the_topic_only(any_variant: Synthesized) -> None:
    stmt = statement(any_variant.body, "PublishNotifications")
    topic = only(
        any_variant.body, "AWS::SNS::Topic", lambda r: props(r)["TopicName"] == any_variant.settings.aws.topic_name
    )
    assert stmt["Action"] == "sns:Publish"
    assert stmt["Resource"] == {"Ref": topic}


def test_sqs_on_its_own_queues_only(any_variant: Synthesized) -> None:
    body = any_variant.body
    send = statement(body, "SendDeadLetters")
    assert send["Action"] == "sqs:SendMessage"
    assert send["Resource"] == {"Fn::GetAtt": [dead_letter_queue(body), "Arn"]}
    sqs_statements = [s for s in role_statements(body) if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    if any_variant.mode == "queue":
        consume = statement(body, "ConsumeInputQueue")
        assert sorted(as_list(consume["Action"])) == sorted(
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
        )
        assert consume["Resource"] == {"Fn::GetAtt": [input_queue(body), "Arn"]}
        assert len(sqs_statements) == 2
    else:
        assert sqs_statements == [send]


def test_kms_on_the_pipeline_key_only(any_variant: Synthesized) -> None:
    stmt = statement(any_variant.body, "UsePipelineKey")
    assert stmt["Resource"] == {"Fn::GetAtt": [only(any_variant.body, "AWS::KMS::Key"), "Arn"]}
    assert sorted(as_list(stmt["Action"])) == ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]


def test_logs_on_the_function_log_group_only(any_variant: Synthesized) -> None:
    log_group = only(any_variant.body, "AWS::Logs::LogGroup")
    (stmt,) = [s for s in role_statements(any_variant.body) if "logs:PutLogEvents" in as_list(s["Action"])]
    assert sorted(as_list(stmt["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert stmt["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}


def test_every_statement_is_one_of_the_known_grants(any_variant: Synthesized) -> None:
    # A new grant must be added here on purpose, with a test above for its scope.
    known = {"ReadLandedFiles", "WriteLedger", "PublishNotifications", "SendDeadLetters", "UsePipelineKey"}
    if any_variant.mode == "queue":
        known.add("ConsumeInputQueue")
    sids = {s.get("Sid") for s in role_statements(any_variant.body)}
    assert sids - {None} == known
    unnamed = [s for s in role_statements(any_variant.body) if "Sid" not in s]
    assert all(
        set(as_list(s["Action"])) <= {"logs:CreateLogStream", "logs:PutLogEvents"} | XRAY_ONLY_ON_STAR for s in unnamed
    )
    assert len(resources(any_variant.body, "AWS::IAM::Policy")) == 1
