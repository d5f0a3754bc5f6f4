"""dockline: an event-driven file pipeline with one core and two engines.

A file lands under ``incoming/`` in a bucket, dockline parses it, writes one ledger
item per document (or record) and publishes one notification per file. The same core
runs as an AWS Lambda function (S3, DynamoDB, SNS) and as an embedded local engine
(a folder, SQLite, a local topic).
"""

from __future__ import annotations

from dockline.errors import TransientError

__all__ = ["TransientError", "__version__"]
__version__ = "0.1.0"
