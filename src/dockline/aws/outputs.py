"""The stack's CloudFormation output keys: a contract between the stack that writes them
(``dockline.infra.stack``) and the commands that read them (``dlq --aws``, ``backfill``,
``status --aws``, redrive). One place, importable without the CDK or boto3."""

OUTPUT_BUCKET = "BucketName"
OUTPUT_TABLE = "TableName"
OUTPUT_TOPIC = "TopicArn"
OUTPUT_DLQ = "DeadLetterQueueUrl"
OUTPUT_QUEUE = "QueueUrl"
OUTPUT_FUNCTION = "FunctionName"
OUTPUT_ALARM_TOPIC = "AlarmTopicArn"
