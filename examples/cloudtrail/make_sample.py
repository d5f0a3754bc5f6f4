"""Write the sample log file (gzip with a fixed mtime, so the bytes never change)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

KEY = "AWSLogs/123456789012/CloudTrail/eu-west-1/2026/12/01/123456789012_CloudTrail_eu-west-1_20261201T0905Z_x1.json.gz"
EVENTS = [
    {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE1",
            "arn": "arn:aws:iam::123456789012:user/alice",
            "accountId": "123456789012",
            "userName": "alice",
        },
        "eventTime": "2026-12-01T09:01:12Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutObject",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"bucketName": "shop-exports", "key": "orders/2026-12-01.json"},
        "responseElements": None,
        "requestID": "R1EXAMPLE",
        "eventID": "3f1c2e0a-0001-4a8e-9d6f-000000000001",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
    },
    {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::123456789012:assumed-role/ci-deploy/run-42",
            "accountId": "123456789012",
        },
        "eventTime": "2026-12-01T09:03:40Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "AttachRolePolicy",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.20",
        "errorCode": "AccessDenied",
        "errorMessage": "User is not authorized to perform: iam:AttachRolePolicy",
        "requestParameters": {"roleName": "admin", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        "eventID": "3f1c2e0a-0002-4a8e-9d6f-000000000002",
        "readOnly": False,
        "eventType": "AwsApiCall",
    },
    {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"},
        "eventTime": "2026-12-01T09:04:00Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "GenerateDataKey",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "cloudtrail.amazonaws.com",
        "eventID": "3f1c2e0a-0003-4a8e-9d6f-000000000003",
        "readOnly": True,
        "eventType": "AwsServiceEvent",
    },
]

if __name__ == "__main__":
    path = Path(__file__).parent / "samples" / KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"Records": EVENTS}, indent=1).encode()
    path.write_bytes(gzip.compress(body, mtime=0))
    print(path)
