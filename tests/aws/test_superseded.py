"""Issue 8, Why 15 (the S3 store's side): a version replaced before it was read raises
SupersededError naming the newer version; a key that is gone stays "object no longer
exists". One HeadObject, and only when the GetObject was refused.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from dockline.aws.store import S3Store
from dockline.errors import ObjectGoneError, SupersededError, TransientError
from dockline.models import ObjectRef
from tests.aws.conftest import REGION
from tests.aws.world import CallLog, Fault

BUCKET = "dockline-superseded"
KEY = "incoming/a.json"


@pytest.fixture
def s3(moto: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def versioned(s3: Any) -> Any:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def put(s3: Any, body: bytes, key: str = KEY) -> dict[str, str]:
    answer = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return {"etag": str(answer["ETag"]).strip('"'), "version": str(answer.get("VersionId") or "")}


def open_error(s3: Any, ref: ObjectRef) -> Exception:
    calls = CallLog()
    s3.meta.events.register("before-call", calls)
    with pytest.raises(Exception) as caught, S3Store(client=s3).open(ref):
        pass
    s3.meta.events.unregister("before-call", calls)
    # a refused read costs exactly one GetObject and one HeadObject
    assert calls.calls == ["s3.GetObject", "s3.HeadObject"]
    return caught.value


# -- unversioned buckets: the version is the ETag, read with IfMatch -------------------------
def test_why15_an_overwritten_object_is_superseded_naming_the_newer_etag(s3: Any) -> None:
    # GIVEN an object overwritten after its event
    old = put(s3, b'{"v": 1}')["etag"]
    new = put(s3, b'{"v": 2}')["etag"]
    # WHEN the old version is opened THEN it is superseded by the new ETag
    error = open_error(s3, ObjectRef(BUCKET, KEY, old))
    assert isinstance(error, SupersededError)
    assert error.newer == new
    assert str(error) == f"object was replaced by a newer version ({new}) before it could be read"


def test_why15_a_deleted_object_still_no_longer_exists(s3: Any) -> None:
    etag = put(s3, b"{}")["etag"]
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    error = open_error(s3, ObjectRef(BUCKET, KEY, etag))
    assert type(error) is ObjectGoneError
    assert str(error) == "object no longer exists"


def test_why15_overwritten_then_deleted_is_gone_not_superseded(s3: Any) -> None:
    etag = put(s3, b"1")["etag"]
    put(s3, b"2")
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    error = open_error(s3, ObjectRef(BUCKET, KEY, etag))
    assert type(error) is ObjectGoneError
    assert str(error) == "object no longer exists"


# -- versioned buckets: the version is the version id -----------------------------------------
def test_why15_a_version_expired_after_a_newer_one_is_superseded_naming_the_newer_version_id(versioned: Any) -> None:
    # GIVEN v1 replaced by v2, and v1 then removed (a lifecycle rule expiring noncurrent versions)
    v1 = put(versioned, b"1")["version"]
    v2 = put(versioned, b"2")["version"]
    versioned.delete_object(Bucket=BUCKET, Key=KEY, VersionId=v1)
    # WHEN v1 is opened THEN it is superseded by v2
    error = open_error(versioned, ObjectRef(BUCKET, KEY, v1))
    assert isinstance(error, SupersededError)
    assert error.newer == v2
    assert v2 in str(error)


def test_why15_a_replaced_version_that_still_exists_is_read_not_superseded(versioned: Any) -> None:
    # a versioned bucket keeps v1 after v2 arrives: v1's event reads v1's own bytes
    v1 = put(versioned, b"first")["version"]
    put(versioned, b"second")
    with S3Store(client=versioned).open(ObjectRef(BUCKET, KEY, v1)) as body:
        assert body.read() == b"first"


def test_why15_the_only_version_removed_is_gone(versioned: Any) -> None:
    v1 = put(versioned, b"1")["version"]
    versioned.delete_object(Bucket=BUCKET, Key=KEY, VersionId=v1)
    error = open_error(versioned, ObjectRef(BUCKET, KEY, v1))
    assert type(error) is ObjectGoneError
    assert str(error) == "object no longer exists"


def test_why15_a_removed_version_behind_a_delete_marker_is_gone(versioned: Any) -> None:
    # GIVEN v1 replaced by v2, v1 removed, then the key deleted (a delete marker is current)
    v1 = put(versioned, b"1")["version"]
    put(versioned, b"2")
    versioned.delete_object(Bucket=BUCKET, Key=KEY, VersionId=v1)
    versioned.delete_object(Bucket=BUCKET, Key=KEY)
    # THEN the key is gone: nothing newer replaced v1 that is still there
    error = open_error(versioned, ObjectRef(BUCKET, KEY, v1))
    assert type(error) is ObjectGoneError
    assert str(error) == "object no longer exists"


def test_why15_an_etag_pinned_read_on_a_versioned_bucket_names_the_newer_etag(versioned: Any) -> None:
    old = put(versioned, b"1")["etag"]
    new = put(versioned, b"2")["etag"]
    error = open_error(versioned, ObjectRef(BUCKET, KEY, old))
    assert isinstance(error, SupersededError)
    assert error.newer == new


# -- when the HeadObject cannot tell ------------------------------------------------------------
def test_why15_a_throttled_lookup_is_transient(s3: Any) -> None:
    old = put(s3, b"1")["etag"]
    put(s3, b"2")
    s3.meta.events.register("before-call.s3.HeadObject", Fault("SlowDown", 503))
    with pytest.raises(TransientError, match="looking up the current version"):
        S3Store(client=s3).open(ObjectRef(BUCKET, KEY, old)).__enter__()


@pytest.mark.parametrize("replaced", [True, False])
def test_why15_a_lookup_that_is_denied_keeps_what_the_read_said(s3: Any, replaced: bool) -> None:
    # GIVEN a role allowed to GetObject but not to HeadObject
    etag = put(s3, b"1")["etag"]
    if replaced:
        put(s3, b"2")
    else:
        s3.delete_object(Bucket=BUCKET, Key=KEY)
    s3.meta.events.register("before-call.s3.HeadObject", Fault("AccessDenied", 403))
    # THEN a PreconditionFailed still means replaced (newer unknown); a NoSuchKey means gone
    with pytest.raises(ObjectGoneError) as caught:
        S3Store(client=s3).open(ObjectRef(BUCKET, KEY, etag)).__enter__()
    if replaced:
        assert isinstance(caught.value, SupersededError)
        assert caught.value.newer is None
    else:
        assert type(caught.value) is ObjectGoneError


def test_why15_a_version_missing_then_found_again_is_read_again(s3: Any) -> None:
    # GIVEN S3 answers NoSuchKey once, although the key holds exactly the pinned version
    etag = put(s3, b"{}")["etag"]
    s3.meta.events.register("before-call.s3.GetObject", Fault("NoSuchKey", 404, times=1))
    # THEN that is a race worth a retry, neither gone nor superseded
    with pytest.raises(TransientError, match="not found, then found again"):
        S3Store(client=s3).open(ObjectRef(BUCKET, KEY, etag)).__enter__()
    with S3Store(client=s3).open(ObjectRef(BUCKET, KEY, etag)) as body:
        assert body.read() == b"{}"


def test_why15_a_readable_version_costs_one_get_object_and_no_head(s3: Any) -> None:
    etag = put(s3, b"{}")["etag"]
    calls = CallLog()
    s3.meta.events.register("before-call", calls)
    with S3Store(client=s3).open(ObjectRef(BUCKET, KEY, etag)) as body:
        body.read()
    assert calls.calls == ["s3.GetObject"]


def test_why15_a_lookup_whose_connection_fails_is_transient(s3: Any) -> None:
    old = put(s3, b"1")["etag"]
    put(s3, b"2")

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    s3.meta.events.register("before-call.s3.HeadObject", unreachable)
    with pytest.raises(TransientError, match="looking up the current version"):
        S3Store(client=s3).open(ObjectRef(BUCKET, KEY, old)).__enter__()
