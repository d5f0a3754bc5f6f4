"""A stand-in for the deployed stack on a moto server: the resources the AWS-facing
commands read, and the stack outputs they find them by (the real stack's output keys)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.aws.conftest import REGION

STACK = "Dockline"
BUCKET = "dockline-landing"
FUNCTION = "dockline-processor"


def deploy_stand_in(*, trigger: str = "queue", versioned: bool = False) -> dict[str, str]:
    """Create the stack through CloudFormation; returns its outputs by key."""
    resources: dict[str, Any] = {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": BUCKET}},
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "dockline-dlq"}},
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": "events",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        },
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "events-notify"}},
    }
    outputs: dict[str, Any] = {
        "BucketName": {"Value": {"Ref": "Bucket"}},
        "TableName": {"Value": {"Ref": "Table"}},
        "TopicArn": {"Value": {"Ref": "Topic"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
        "FunctionName": {"Value": FUNCTION},
    }
    if trigger == "queue":
        resources["InputQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "dockline-input"}}
        outputs["QueueUrl"] = {"Value": {"Ref": "InputQueue"}}
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    body = json.dumps({"Resources": resources, "Outputs": outputs})
    cloudformation.create_stack(StackName=STACK, TemplateBody=body)
    if versioned:  # moto's CloudFormation leaves VersioningConfiguration out
        boto3.client("s3", region_name=REGION).put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
    stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
