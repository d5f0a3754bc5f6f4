"""Run the Lambda handler from a function-code folder alone, in a fresh interpreter, on moto.

The interpreter runs with ``-I -S``: no PYTHONPATH, no user site, no ``.pth`` files (so not the
editable install's ``src/`` either). Its ``sys.path`` is the standard library, the code folder,
and this venv's site-packages for boto3, Powertools and moto, as on Lambda (runtime + layer).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HANDLER_FROM_ASSET = r"""
import base64, json, os, sys
from urllib.parse import quote_plus

asset, site_packages, corpus_file = sys.argv[1:4]
sys.path[:0] = [asset]
sys.path.append(site_packages)

from moto import mock_aws
import boto3
from boto3.dynamodb.types import TypeDeserializer

corpus = json.loads(open(corpus_file).read())
with mock_aws():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="landing")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="events",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="events-notify")["TopicArn"]
    os.environ.update({"TABLE_NAME": "events", "TOPIC_ARN": topic})
    records = []
    for key, body in corpus.items():
        data = base64.b64decode(body)
        etag = s3.put_object(Bucket="landing", Key=key, Body=data)["ETag"].strip('"')
        records.append({
            "eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
            "eventTime": "2026-12-01T12:00:00.000Z",
            "s3": {"bucket": {"name": "landing"},
                   "object": {"key": quote_plus(key, safe="/"), "size": len(data), "eTag": etag}},
        })

    from dockline.aws.handler import lambda_handler
    from dockline.jsonx import dumps
    result = lambda_handler({"Records": records}, None)

    des = TypeDeserializer()
    stored = {}
    for raw in dynamodb.scan(TableName="events")["Items"]:
        item = {k: des.deserialize(v) for k, v in raw.items()}
        if not item["pk"].startswith("dockline#"):
            index = item.get("record_index")
            stored[item["pk"]] = [dumps(item["payload"]).decode(), item.get("route"),
                                  None if index is None else int(index)]

import dockline
loaded = sorted({os.path.realpath(m.__file__) for m in list(sys.modules.values())
                 if getattr(m, "__file__", None)})
print(json.dumps({"result": result, "items": stored, "dockline": dockline.__file__, "loaded": loaded}))
"""


def run_handler_from_asset(
    asset: Path, files: Mapping[str, bytes], tmp_path: Path, *, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Put ``files`` in a moto bucket and hand one S3 event naming them all to the handler
    imported from ``asset``, with ``env`` as the function's environment (TABLE_NAME and
    TOPIC_ARN are moto's). Returns the handler's result, the stored record items (pk ->
    [canonical payload JSON, route, record index]), where dockline came from and every
    module file loaded."""
    corpus = tmp_path / "corpus.json"
    corpus.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in files.items()}))
    process_env = {
        **(env or {}),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        # -B: the shared asset stays as synth wrote it (no __pycache__ from this import)
        [sys.executable, "-I", "-S", "-B", "-c", HANDLER_FROM_ASSET, str(asset), site_packages(), str(corpus)],
        capture_output=True,
        text=True,
        env=process_env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def foreign_modules(seen: Mapping[str, Any], asset: Path) -> list[str]:
    """Module files loaded from anywhere but the asset, site-packages and the standard library."""
    allowed = (str(asset.resolve()), site_packages(), sysconfig.get_paths()["stdlib"])
    return [f for f in seen["loaded"] if not f.startswith(allowed)]
