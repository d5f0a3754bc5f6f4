"""The seed article's handler made idempotent the way its readers would: Powertools'
``@idempotent`` over a DynamoDB persistence layer (the article lists idempotency among its
hardening steps but shows no code for it). The bound issue 11 names for the handler row.

Per event (one S3 record each, as a direct trigger delivers them) it costs five calls: the
idempotency record's PutItem, GetObject, the item's PutItem, Publish, and the idempotency
record's UpdateItem. Imported inside ``mock_aws`` with TABLE_NAME, TOPIC_ARN and
IDEMPOTENCY_TABLE set (the benchmark creates that table with key ``id``).
"""

import json
import os

import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent

ddb = boto3.resource("dynamodb")
sns = boto3.client("sns")
table = ddb.Table(os.environ["TABLE_NAME"])
topic_arn = os.environ["TOPIC_ARN"]
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])


@idempotent(persistence_store=persistence)
def lambda_handler(event, context):
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = record["s3"]["object"]["key"]
        # Fetch file
        s3 = boto3.client("s3")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        data = json.loads(body)
        # Write to DynamoDB
        pk = data.get("id", key)
        table.put_item(Item={"pk": pk, "payload": data})
        # Publish notification
        sns.publish(TopicArn=topic_arn, Message=f"New file processed: {key}", Subject="S3 Event Processed")
    return {"ok": True}
