"""The seed article's handler made idempotent the way its readers would: Powertools'
``@idempotent`` over a DynamoDB persistence layer (the article lists idempotency among its
hardening steps but shows no code for it). The bound issue 11 names for the handler row.

Per event (one S3 record each, as a direct trigger delivers them) it costs five calls: the
idempotency record's PutItem, GetObject, the item's PutItem, Publish, and the idempotency
record's UpdateItem. Imported inside ``mock_aws`` with TABLE_NAME, TOPIC_ARN and
IDEMPOTENCY_TABLE set (the benchmark creates that table with key ``id``).
"""

import os

import seed_handler  # the seed's handler, verbatim: bench/seed_handler.py
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent

persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
lambda_handler = idempotent(seed_handler.lambda_handler, persistence_store=persistence)
