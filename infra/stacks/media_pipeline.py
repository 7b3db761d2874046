"""The production stack: media bucket, labels table, labeler pipeline, and the policy
the Django web app and workers run with."""

from __future__ import annotations

from aws_cdk import CfnCondition, CfnOutput, CfnParameter, Duration, Fn, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import resources
from infra.nag import acknowledge
from infra.constructs.labeler import BASIC_EXECUTION_ROLE_FINDING, Labeler, alarm_at_or_above, logical_id
from infra.constructs.labels_table import LabelsTable
from infra.constructs.media_bucket import MediaBucket


class MediaPipelineStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        concurrency = CfnParameter(
            self,
            "LabelerMaximumConcurrency",
            type="Number",
            default=resources.DEFAULT_MAXIMUM_CONCURRENCY,
            min_value=2,  # the event source mapping's minimum
            max_value=1000,
            description="Concurrent labeler functions the SQS poller runs; each makes 3 Rekognition calls at once, "
                        "keep it under your TPS quota (docs/aws.md).",
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
            self, "Labeler", bucket=media.bucket, table=labels.table, max_concurrency=concurrency.value_as_number,
            analysis=self._analysis_parameters(),
        )

        alarm_email = CfnParameter(
            self, "AlarmEmail", type="String", default="",
            description="Optional: an e-mail address subscribed to the pipeline's alarms (confirm the subscription mail).",
        )
        self.alarm_topic = self._alarms(labeler, alarm_email.value_as_string)

        # What the Django web app and Celery workers need, and nothing more.
        bucket_arn = media.bucket.bucket_arn
        prefixes = (resources.UPLOAD_PREFIX, resources.THUMBNAIL_PREFIX, resources.RENDITION_PREFIX, resources.INCOMING_PREFIX)
        self.web_policy = iam.ManagedPolicy(
            self,
            "WebAppPolicy",
            description="Django web app and workers: media objects under the app's prefixes, labels table reads.",
            statements=[
                # DeleteObjectVersion: erasure removes every version of a photo's objects,
                # not only a delete marker over bytes the bucket would keep for 30 days.
                # AbortMultipartUpload: django-storages uploads files over 8 MB in parts and
                # aborts a failed upload, whose parts would otherwise be stored (and billed).
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion",
                             "s3:AbortMultipartUpload"],
                    resources=[f"{bucket_arn}/{prefix}*" for prefix in prefixes],
                ),
                # Without s3:ListBucket on the bucket, S3 answers HeadObject on a missing
                # key with 403 instead of 404, and django-storages' exists() (called for
                # every new key, file_overwrite=False) raises it: uploads would fail. A
                # HeadObject request carries no s3:prefix, so a prefix condition would
                # deny it too; the grant is on this one bucket, unconditioned.
                iam.PolicyStatement(actions=["s3:ListBucket", "s3:ListBucketVersions"], resources=[bucket_arn]),
                iam.PolicyStatement(
                    actions=["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:DeleteItem"],
                    resources=[labels.table.table_arn, f"{labels.table.table_arn}/index/{resources.SYNC_INDEX}"],
                ),
                # Re-analysis: an S3-event-shaped message to the labeler, not an object rewrite.
                iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[labeler.queue.queue_arn]),
                # Erasure tombstones only: a put limited to the tombstone's attributes, so
                # the web app can never write an analysis record (labels) itself.
                iam.PolicyStatement(
                    actions=["dynamodb:PutItem"],
                    resources=[labels.table.table_arn],
                    conditions={"ForAllValues:StringEquals": {"dynamodb:Attributes": list(resources.TOMBSTONE_ATTRIBUTES)}},
                ),
            ],
        )
        for prefix in prefixes:
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
            "LabelerQueueUrl": (labeler.queue.queue_url, "LABELER_QUEUE_URL"),
            "DeadLetterQueueUrl": (labeler.dead_letters.queue_url, "LABELER_DLQ_URL"),
            "DeadLetterAlarmName": (labeler.dlq_alarm.alarm_name, None),
            "AlarmTopicArn": (self.alarm_topic.topic_arn, None),
            "LabelerFunctionName": (labeler.function.function_name, None),
            "WebAppPolicyArn": (self.web_policy.managed_policy_arn, None),
        }
        for name, (value, setting) in outputs.items():
            CfnOutput(self, name, value=value, description=f"Django setting {setting}" if setting else name)
        self.labeler = labeler
        self.media = media
        self.labels = labels

    def _analysis_parameters(self) -> dict[str, str]:
        """What Rekognition is asked for each image: the features an operator pays for
        (README, "Cost per image"), MaxLabels and MinConfidence. Defaults: everything on,
        as the app expects; the handler's environment carries the choice."""
        def switch(name: str, description: str) -> str:
            return CfnParameter(self, name, type="String", default="true", allowed_values=["true", "false"],
                                description=description).value_as_string

        def number(name: str, default: float, lo: float, hi: float, description: str) -> str:
            return Token.as_string(CfnParameter(self, name, type="Number", default=default, min_value=lo, max_value=hi,
                                                description=description).value)

        return {
            "DETECT_MODERATION": switch(
                "DetectModeration", "DetectModerationLabels on every image. Off: no photo is flagged automatically; "
                "only reports bring photos to moderators."),
            "DETECT_TEXT": switch("DetectText", "DetectText on every image (text found in photos, searchable)."),
            "IMAGE_PROPERTIES": switch(
                "ImageProperties", "DetectLabels' IMAGE_PROPERTIES feature (dominant colours, quality), billed apart."),
            "MAX_LABELS": number("MaxLabels", 100, 1, 1000, "DetectLabels' MaxLabels: labels kept per image."),
            "MIN_LABEL_CONFIDENCE": number(
                "MinLabelConfidence", 50, 0, 100, "DetectLabels' MinConfidence: labels below it are not stored "
                "(the app's display threshold applies on top)."),
        }

    def _alarms(self, labeler: Labeler, email: str) -> sns.Topic:
        """One topic for every alarm of the pipeline: uploads in the DLQ, function errors
        and throttles, and a queue that stops draining (its oldest message's age)."""
        # Not KMS-encrypted on purpose: CloudWatch alarms cannot publish to a topic that
        # uses the AWS-managed SNS key, and the notifications carry alarm names and
        # metrics only, no personal data.
        topic = sns.Topic(self, "Alarms", display_name="Media pipeline alarms", enforce_ssl=True)
        subscription = sns.CfnSubscription(self, "AlarmEmailSubscription", topic_arn=topic.topic_arn, protocol="email",
                                           endpoint=email)
        subscription.cfn_options.condition = CfnCondition(
            self, "HasAlarmEmail", expression=Fn.condition_not(Fn.condition_equals(email, "")))
        function, queue = labeler.function, labeler.queue
        five_minutes = Duration.minutes(5)
        alarms = [
            labeler.dlq_alarm,
            alarm_at_or_above(self, "LabelerErrorsAlarm", "The labeler function failed (see its logs).",
                              function.metric_errors(period=five_minutes, statistic="Sum"), threshold=1),
            alarm_at_or_above(self, "LabelerThrottlesAlarm",
                              "The labeler was throttled: account concurrency is short of LabelerMaximumConcurrency.",
                              function.metric_throttles(period=five_minutes, statistic="Sum"), threshold=1),
            alarm_at_or_above(self, "QueueAgeAlarm",
                              "Uploads have waited over 15 minutes for the labeler: it is stuck or too slow.",
                              queue.metric_approximate_age_of_oldest_message(period=five_minutes, statistic="Maximum"),
                              threshold=resources.QUEUE_AGE_ALARM_SECONDS),
            alarm_at_or_above(self, "FailedRateAlarm",
                              f"Over {resources.FAILED_RATE_ALARM_PERCENT} % of images ended FAILED in 15 minutes: "
                              "Rekognition rejects them or cannot read the bucket (permissions, KMS).",
                              failed_rate(), threshold=resources.FAILED_RATE_ALARM_PERCENT),
        ]
        for alarm in alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
        return topic



def failed_rate() -> cloudwatch.MathExpression:
    """Percent of the images the labeler analysed in 15 minutes that ended FAILED (its
    Powertools metrics), 0 while fewer than FAILED_RATE_MIN_IMAGES were analysed."""
    period = Duration.minutes(15)

    def count(name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace=resources.METRICS_NAMESPACE, metric_name=name,
                                 dimensions_map={"service": "labeler"}, statistic="Sum", period=period)

    total = "(FILL(failed, 0) + FILL(labeled, 0))"
    return cloudwatch.MathExpression(
        expression=f"IF({total} >= {resources.FAILED_RATE_MIN_IMAGES}, 100 * FILL(failed, 0) / {total}, 0)",
        using_metrics={"failed": count("ImagesFailed"), "labeled": count("ImagesLabeled")},
        period=period, label="Images FAILED (%)",
    )
