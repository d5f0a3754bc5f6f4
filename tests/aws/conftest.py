"""Fixtures for the AWS engine's tests: fake credentials, moto, and the seed's resources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

REGION = "us-east-1"
TABLE = "events"


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real account: fake credentials, a fixed region, no profile."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Dockline")


@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws():
        yield


def create_table(client: Any, name: str = TABLE) -> None:
    """Exactly the seed's table: one string partition key ``pk``, on demand."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def dynamodb(moto: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    create_table(client)
    return client
