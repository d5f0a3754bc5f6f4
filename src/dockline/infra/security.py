"""The pipeline's KMS key and the written record of checkov checks that do not apply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Aws, CfnResource, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct, IConstruct


def _resource(construct: IConstruct) -> CfnResource:
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    return resource


def skip_cfn_lint(construct: IConstruct, reasons: Mapping[str, str]) -> None:
    """Tell cfn-lint (``Metadata.cfn-lint.config.ignore_checks``) which rules do not apply, and why.

    cfn-lint has no comment field; the reasons sit beside the ids under ``reasons``.
    """
    resource = _resource(construct)
    existing: Any = resource.get_metadata("cfn-lint") or {}
    ignored = [*existing.get("config", {}).get("ignore_checks", []), *reasons]
    why = {**existing.get("reasons", {}), **reasons}
    resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ignored}, "reasons": why})


def skip_checkov(construct: IConstruct, reasons: Mapping[str, str]) -> None:
    """Record in the resource's template metadata why checkov checks do not apply to it.

    checkov reads ``Metadata.checkov.skip`` and reports these as skipped with the comment,
    so each suppression is visible in its output and in the template, never silent.
    """
    resource = _resource(construct)
    existing: Any = resource.get_metadata("checkov") or {}
    skips = list(existing.get("skip", []))
    skips.extend({"id": check, "comment": comment} for check, comment in reasons.items())
    resource.add_metadata("checkov", {"skip": skips})


class PipelineKey(Construct):
    """One customer-managed key for the pipeline's queues, topics, table and logs.

    One key rather than one per resource: each key costs a monthly fee, and every service
    here is granted only the key operations it needs, scoped by account or encryption context.

    Attributes: ``key``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, log_group_arn: str, removal_policy: RemovalPolicy):
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="dockline: queues, topics, ledger table and function logs",
            enable_key_rotation=True,
            pending_window=Duration.days(7) if removal_policy is RemovalPolicy.DESTROY else Duration.days(30),
            removal_policy=removal_policy,
        )
        same_account = {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
        # S3 sends event notifications to the encrypted queue; CloudWatch alarms publish to
        # the encrypted alarm topic. Both act as themselves, not as a role of ours.
        for service in ("s3.amazonaws.com", "cloudwatch.amazonaws.com"):
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Allow{service.split('.')[0].capitalize()}ToUseTheKey",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                    resources=["*"],  # in a key policy, "*" means this key
                    conditions=same_account,
                )
            )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForTheFunctionLogGroup",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
            )
        )
