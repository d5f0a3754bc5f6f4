"""The AWS engine: S3 store, DynamoDB ledger, SNS notifier, SQS dead letters, and the
Lambda entry point ``dockline.aws.handler.lambda_handler``. See docs/aws.md."""
