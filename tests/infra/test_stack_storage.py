"""The landing bucket and the ledger table, in both trigger modes and with custom settings."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.cfn import TLS_ONLY_FIELDS, main_bucket, only, props, render, resources
from tests.infra.conftest import Synthesized


def test_bucket_blocks_public_access_and_is_encrypted_and_versioned(any_variant: Synthesized) -> None:
    # GIVEN the synthesized stack / THEN the landing bucket is private, encrypted and versioned
    any_variant.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "NotificationConfiguration": Match.any_value(),
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": Match.any_value()}}
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value()},
        },
    )


def test_bucket_policy_denies_requests_without_tls(any_variant: Synthesized) -> None:
    # GIVEN the landing bucket's logical id, found by what it is
    bucket = main_bucket(any_variant.body)
    # THEN its bucket policy denies every s3 action unless aws:SecureTransport is true
    any_variant.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket},
            "PolicyDocument": {
                "Statement": Match.array_with([Match.object_like({**TLS_ONLY_FIELDS, "Action": "s3:*"})])
            },
        },
    )


def test_bucket_name_comes_from_settings_or_is_derived_from_stack_account_and_region(
    any_variant: Synthesized,
) -> None:
    bucket = any_variant.body["Resources"][main_bucket(any_variant.body)]
    name = render(props(bucket)["BucketName"])
    if any_variant.settings.aws.bucket_name:
        assert name == any_variant.settings.aws.bucket_name
    else:
        assert name == "dockline-${AWS::AccountId}-${AWS::Region}"


def test_bucket_notifications_filter_prefix_and_each_suffix(any_variant: Synthesized) -> None:
    # GIVEN the settings' prefix and every accepted suffix (with .gz when gzip is on)
    pipeline = any_variant.settings.pipeline
    key = "QueueConfigurations" if any_variant.mode == "queue" else "LambdaConfigurations"
    config = props(any_variant.body["Resources"][main_bucket(any_variant.body)])["NotificationConfiguration"]
    # THEN there is exactly one ObjectCreated configuration per suffix, each with the prefix
    assert set(config) == {key}
    seen = []
    for entry in config[key]:
        assert entry["Event"] == "s3:ObjectCreated:*"
        rules = {r["Name"]: r["Value"] for r in entry["Filter"]["S3Key"]["Rules"]}
        assert rules["prefix"] == pipeline.prefix
        seen.append(rules["suffix"])
    assert sorted(seen) == sorted(pipeline.all_suffixes())


def test_default_notifications_are_incoming_json_as_in_the_seed(default: Synthesized) -> None:
    config = props(default.body["Resources"][main_bucket(default.body)])["NotificationConfiguration"]
    (entries,) = config.values()
    filters = [{r["Name"]: r["Value"] for r in e["Filter"]["S3Key"]["Rules"]} for e in entries]
    assert {"prefix": "incoming/", "suffix": ".json"} in filters
    assert {"prefix": "incoming/", "suffix": ".json.gz"} in filters


def test_bucket_is_created_after_the_permission_s3_needs(any_variant: Synthesized) -> None:
    # S3 validates each destination when the notification configuration is written.
    body = any_variant.body
    depends = body["Resources"][main_bucket(body)].get("DependsOn", [])
    if any_variant.mode == "queue":
        policy = only(body, "AWS::SQS::QueuePolicy", lambda r: "s3.amazonaws.com" in str(props(r)))
    else:
        policy = only(body, "AWS::Lambda::Permission", lambda r: props(r)["Principal"] == "s3.amazonaws.com")
    assert policy in depends


def test_no_custom_resource_helper_function_is_deployed(any_variant: Synthesized) -> None:
    # The bucket carries its notifications itself: one function (ours), no CDK helper Lambda.
    assert len(resources(any_variant.body, "AWS::Lambda::Function")) == 1
    assert not resources(any_variant.body, "Custom::S3BucketNotifications")


def test_table_has_string_pk_on_demand_pitr_and_kms(any_variant: Synthesized) -> None:
    aws = any_variant.settings.aws
    any_variant.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": aws.table_name,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()},
        },
    )


def test_table_deletion_protection_and_removal_policy_come_from_settings(any_variant: Synthesized) -> None:
    aws = any_variant.settings.aws
    policy = "Retain" if aws.removal_policy == "retain" else "Delete"
    any_variant.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": Match.object_like({"DeletionProtectionEnabled": aws.deletion_protection}),
            "DeletionPolicy": policy,
            "UpdateReplacePolicy": policy,
        },
    )


def test_default_table_is_events_protected_and_retained(default: Synthesized) -> None:
    default.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": Match.object_like({"TableName": "events", "DeletionProtectionEnabled": True}),
            "DeletionPolicy": "Retain",
        },
    )
