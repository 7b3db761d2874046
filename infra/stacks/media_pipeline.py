"""The production stack: media bucket, labels table, labeler pipeline, and the policy
the Django web app and workers run with."""

from __future__ import annotations

from aws_cdk import CfnOutput, CfnParameter, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import resources
from infra.nag import acknowledge
from infra.constructs.labeler import BASIC_EXECUTION_ROLE_FINDING, Labeler, logical_id
from infra.constructs.labels_table import LabelsTable
from infra.constructs.media_bucket import MediaBucket


class MediaPipelineStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        reserved = CfnParameter(
            self,
            "LabelerReservedConcurrency",
            type="Number",
            default=resources.DEFAULT_RESERVED_CONCURRENCY,
            min_value=1,
            max_value=1000,
            description="Concurrent labeler functions; each image makes 3 Rekognition calls, keep it under your TPS quota.",
        )
        origins = CfnParameter(
            self,
            "CorsAllowedOrigins",
            type="CommaDelimitedList",
            default="https://localhost:8000",
            description="Origins allowed to upload to and read from the media bucket from a browser.",
        )
        media = MediaBucket(self, "Media", cors_origins=origins.value_as_list)
        labels = LabelsTable(self, "Labels")
        labeler = Labeler(
            self, "Labeler", bucket=media.bucket, table=labels.table, reserved_concurrency=reserved.value_as_number
        )

        # What the Django web app and Celery workers need, and nothing more.
        bucket_arn = media.bucket.bucket_arn
        self.web_policy = iam.ManagedPolicy(
            self,
            "WebAppPolicy",
            description="Django web app and workers: media objects under the app's prefixes, labels table reads.",
            statements=[
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    resources=[f"{bucket_arn}/{resources.UPLOAD_PREFIX}*", f"{bucket_arn}/{resources.THUMBNAIL_PREFIX}*"],
                ),
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{resources.UPLOAD_PREFIX}*", f"{resources.THUMBNAIL_PREFIX}*"]}},
                ),
                iam.PolicyStatement(
                    actions=["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:DeleteItem"],
                    resources=[labels.table.table_arn, f"{labels.table.table_arn}/index/{resources.SYNC_INDEX}"],
                ),
            ],
        )
        for prefix in (resources.UPLOAD_PREFIX, resources.THUMBNAIL_PREFIX):
            acknowledge(
                self.web_policy,
                f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id(media.bucket)}.Arn>/{prefix}*]",
                f"Object access is scoped to the {prefix} prefix; keys are UUIDs not known in advance.",
            )
        # CDK's own singleton that applies the bucket notifications (created above).
        notifications = next(c for c in self.node.children if c.node.id.startswith("BucketNotificationsHandler"))
        acknowledge(
            notifications,
            BASIC_EXECUTION_ROLE_FINDING,
            "CDK's BucketNotificationsHandler custom resource: the managed policy grants only log writes.",
        )

        outputs = {
            "MediaBucketName": (media.bucket.bucket_name, "AWS_STORAGE_BUCKET_NAME"),
            "LabelsTableName": (labels.table.table_name, "LABELS_TABLE_NAME"),
            "Region": (self.region, "AWS_REGION"),
            "LabelerQueueUrl": (labeler.queue.queue_url, None),
            "DeadLetterQueueUrl": (labeler.dead_letters.queue_url, None),
            "DeadLetterAlarmName": (labeler.dlq_alarm.alarm_name, None),
            "LabelerFunctionName": (labeler.function.function_name, None),
            "WebAppPolicyArn": (self.web_policy.managed_policy_arn, None),
        }
        for name, (value, setting) in outputs.items():
            CfnOutput(self, name, value=value, description=f"Django setting {setting}" if setting else name)
        self.labeler = labeler
        self.media = media
        self.labels = labels
