"""Where files land (the bucket) and where their records go (the ledger table)."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from dockline.infra.security import skip_checkov


class IngestBucket(Construct):
    """The landing bucket: private, encrypted, versioned, TLS only, with server access logs.

    Its name is fixed before deployment (from settings, or stack name + account + region)
    so that the queue policy and the Lambda permission can name it in ``aws:SourceArn``
    without a reference back to the bucket. That lets the bucket carry its own notification
    configuration, with no custom resource in between (CDK's ``add_event_notification``
    deploys a helper Lambda function for that).

    Attributes: ``bucket``, ``bucket_name``, ``bucket_arn``, ``access_logs``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str | None,
        stack_name: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket_name = bucket_name or f"{stack_name.lower()}-{Aws.ACCOUNT_ID}-{Aws.REGION}"
        self.bucket_arn = f"arn:{Aws.PARTITION}:s3:::{self.bucket_name}"
        # Server access logs must go to an SSE-S3 bucket (S3 log delivery cannot use KMS).
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(30))
            ],
            removal_policy=removal_policy,
        )
        skip_checkov(
            self.access_logs,
            {"CKV_AWS_18": "This is the access-log bucket; logging it to itself would loop."},
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=self.bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # SSE-S3, not KMS: the function reads every object, and S3-managed keys cost no
            # KMS request per read; the bucket is private and TLS only.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="s3-access/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    # Versioning keeps overwritten files for replay; not forever.
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=removal_policy,
        )

    def objects_arn(self, prefix: str) -> str:
        """The ARN pattern of the objects under ``prefix`` (for ``s3:GetObject``)."""
        return f"{self.bucket_arn}/{prefix}*"


class LedgerTable(Construct):
    """The ``events`` ledger: key ``pk`` (string), on-demand, PITR, encrypted with the pipeline key.

    Attributes: ``table``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table_name: str,
        key: kms.IKey,
        deletion_protection: bool,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            deletion_protection=deletion_protection,
            removal_policy=removal_policy,
        )
