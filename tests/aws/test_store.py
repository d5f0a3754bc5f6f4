"""S3Store against moto: pinned, streamed reads and error translation."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError

from dockline.aws.store import S3Store
from dockline.errors import ObjectGoneError, PermanentError, SupersededError, TransientError
from dockline.models import ObjectRef
from tests.aws.conftest import REGION
from tests.aws.world import fail_with

BUCKET = "dockline-store"


@pytest.fixture
def s3(moto: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


def put(s3: Any, key: str, data: bytes) -> str:
    return str(s3.put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"]).strip('"')


def test_reads_the_version_named_by_its_etag_in_chunks_never_whole(s3: Any) -> None:
    # GIVEN a 4 MiB object, and a hook that keeps the StreamingBody S3 hands back
    data = bytes(range(256)) * 16384
    etag = put(s3, "incoming/big.bin", data)
    bodies: list[Any] = []
    s3.meta.events.register("after-call.s3.GetObject", lambda parsed, **_: bodies.append(parsed["Body"]))
    store = S3Store(client=s3)
    # WHEN it is opened by ETag and the first 64 KiB are read
    with store.open(ObjectRef(BUCKET, "incoming/big.bin", etag)) as body:
        first = body.read(65536)
        # THEN far less than the whole object has been pulled from the stream
        assert 0 < bodies[0]._amount_read <= 2 * 65536
        rest = body.read()
    # AND the bytes are the object's
    assert first + rest == data


def test_a_replaced_object_is_gone_for_the_old_etag(s3: Any) -> None:
    old = put(s3, "incoming/a.json", b'{"v": 1}')
    put(s3, "incoming/a.json", b'{"v": 2}')
    with pytest.raises(ObjectGoneError, match="replaced by a newer version"):
        S3Store(client=s3).open(ObjectRef(BUCKET, "incoming/a.json", old)).__enter__()


def test_a_deleted_object_no_longer_exists(s3: Any) -> None:
    etag = put(s3, "incoming/a.json", b"{}")
    s3.delete_object(Bucket=BUCKET, Key="incoming/a.json")
    with pytest.raises(ObjectGoneError, match=r"^object no longer exists$"):
        S3Store(client=s3).open(ObjectRef(BUCKET, "incoming/a.json", etag)).__enter__()


def test_versioned_bucket_reads_the_old_version_by_version_id(s3: Any) -> None:
    # GIVEN a versioned bucket where the key was overwritten
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key="incoming/v.json", Body=b"first")["VersionId"]
    second = s3.put_object(Bucket=BUCKET, Key="incoming/v.json", Body=b"second")["VersionId"]
    # WHEN the first version is opened
    with S3Store(client=s3).open(ObjectRef(BUCKET, "incoming/v.json", first)) as body:
        # THEN its own bytes are read
        assert body.read() == b"first"
    # AND a version the key does not hold is superseded by the one it holds (issue 8, item 11)
    with pytest.raises(SupersededError, match="replaced by a newer version") as caught:
        S3Store(client=s3).open(ObjectRef(BUCKET, "incoming/v.json", "no-such-version")).__enter__()
    assert caught.value.newer == second


@pytest.mark.parametrize(("code", "status"), [("SlowDown", 503), ("InternalError", 500), ("RequestTimeout", 400)])
def test_throttling_and_5xx_are_transient(s3: Any, code: str, status: int) -> None:
    etag = put(s3, "incoming/a.json", b"{}")
    s3.meta.events.register("before-call.s3.GetObject", fail_with(code, status))
    with pytest.raises(TransientError, match=code):
        S3Store(client=s3).open(ObjectRef(BUCKET, "incoming/a.json", etag)).__enter__()


def test_access_denied_is_permanent_with_a_reason(s3: Any) -> None:
    etag = put(s3, "incoming/a.json", b"{}")
    s3.meta.events.register("before-call.s3.GetObject", fail_with("AccessDenied", 403))
    with pytest.raises(
        PermanentError, match=r"access denied reading s3://dockline-store/incoming/a.json.*s3:GetObject"
    ):
        S3Store(client=s3).open(ObjectRef(BUCKET, "incoming/a.json", etag)).__enter__()


def test_no_client_is_built_until_the_first_read(moto: None) -> None:
    built: list[str] = []

    def factory() -> Any:
        built.append("s3")
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="k.json", Body=b"{}")
        return client

    store = S3Store(client_factory=factory)
    assert built == []
    etag = store.client.head_object(Bucket=BUCKET, Key="k.json")["ETag"].strip('"')
    with store.open(ObjectRef(BUCKET, "k.json", etag)) as body:
        assert body.read() == b"{}"
    assert built == ["s3"]


def test_a_connection_dropped_mid_stream_is_transient(s3: Any) -> None:
    # GIVEN S3 answers, but the connection breaks while the body is being read
    etag = put(s3, "incoming/a.json", b"{}")

    class Broken:
        def read(self, _amount: int = -1) -> bytes:
            raise ReadTimeoutError(endpoint_url="https://s3.amazonaws.com")

        def close(self) -> None:
            pass

    def swap(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Body"] = Broken()

    s3.meta.events.register("after-call.s3.GetObject", swap)
    # WHEN the body is read THEN the failure is transient (worth a retry), not bad input
    with (
        pytest.raises(TransientError, match="interrupted"),
        S3Store(client=s3).open(ObjectRef(BUCKET, "incoming/a.json", etag)) as body,
    ):
        body.read()
