"""The production stack: media bucket, labels table, labeler pipeline, and the policy
the Django web app and workers run with."""

from __future__ import annotations

from aws_cdk import Aws, CfnCondition, CfnOutput, CfnParameter, Duration, Fn, Stack, Token
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
from infra.constructs.video import VideoAnalysis


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
        backfill = CfnParameter(
            self, "BackfillMaximumConcurrency", type="Number", default=resources.DEFAULT_BACKFILL_CONCURRENCY,
            min_value=2, max_value=1000,
            description="Concurrent labeler functions for the backfill's own queue (analyse_bucket), on top of "
                        "LabelerMaximumConcurrency; live uploads never wait behind a backfill.",
        )
        reserved = CfnParameter(
            self, "LabelerReservedConcurrency", type="Number",
            default=0, min_value=0, max_value=2000,
            description="Concurrency reserved for the labeler, 0 for none (the default: a new account's limit "
                        "allows no reservation). If set, at least LabelerMaximumConcurrency + "
                        "BackfillMaximumConcurrency, and raised with them: below the sum, batches are throttled "
                        "and burn their receive counts.",
        )
        reserves = CfnCondition(self, "ReservesConcurrency", expression=Fn.condition_not(
            Fn.condition_equals(reserved.value_as_number, 0)))
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
            backfill_concurrency=backfill.value_as_number, analysis=self._analysis_parameters(),
        )
        video_start = CfnParameter(
            self, "VideoStartMaximumConcurrency", type="Number", default=resources.DEFAULT_VIDEO_START_CONCURRENCY,
            min_value=2, max_value=100,
            description="Concurrent video starters; each starts a video's jobs (up to 3). Rekognition Video runs "
                        "at most 20 jobs at once by default: over it, a video waits on its queue (docs/aws.md).")
        video = VideoAnalysis(self, "Video", bucket=media.bucket, table=labels.table, labeler=labeler,
                              settings=self._video_parameters(), start_concurrency=video_start.value_as_number)
        cfn_function = labeler.function.node.default_child
        cfn_function.reserved_concurrent_executions = Token.as_number(
            Fn.condition_if(reserves.logical_id, reserved.value_as_number, Aws.NO_VALUE))

        alarm_email = CfnParameter(
            self, "AlarmEmail", type="String", default="",
            description="Optional: an e-mail address subscribed to the pipeline's alarms (confirm the subscription mail).",
        )
        self.alarm_topic = self._alarms(labeler, labels, alarm_email.value_as_string, video)

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
                # GetObjectVersion: a confirmed direct upload is copied by its VersionId
                # (CopyObject needs it on the source). AbortMultipartUpload: django-storages
                # uploads files over 8 MB in parts and
                # aborts a failed upload, whose parts would otherwise be stored (and billed).
                # ListMultipartUploadParts: a video's browser upload is resumed, and its
                # parts checked before they are joined, by ListParts (its own permission).
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
                             "s3:DeleteObjectVersion", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
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
                # Backfill: the same messages to the backfill's own queue (analyse_bucket).
                iam.PolicyStatement(actions=["sqs:SendMessage"],
                                    resources=[labeler.queue.queue_arn, labeler.backfill_queue.queue_arn]),
                # The AWS sweep re-sends lost photos only once the live queue is drained.
                iam.PolicyStatement(actions=["sqs:GetQueueAttributes"], resources=[labeler.queue.queue_arn]),
                # The sync's heartbeat (SyncRuns, RecordsSynced): PutMetricData has no
                # resource-level permissions; the condition keeps it to our namespace.
                iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                                    conditions={"StringEquals": {"cloudwatch:namespace": resources.METRICS_NAMESPACE}}),
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
        acknowledge(self.web_policy, "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                    "cloudwatch:PutMetricData has no resource-level permissions; a condition limits it to the "
                    "pipeline's namespace.")
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
            "BackfillQueueUrl": (labeler.backfill_queue.queue_url, "LABELER_BACKFILL_QUEUE_URL"),
            "BackfillDeadLetterQueueUrl": (labeler.backfill_dead_letters.queue_url, "LABELER_BACKFILL_DLQ_URL"),
            "DeadLetterAlarmName": (labeler.dlq_alarm.alarm_name, None),
            "AlarmTopicArn": (self.alarm_topic.topic_arn, None),
            "LabelerFunctionName": (labeler.function.function_name, None),
            "WebAppPolicyArn": (self.web_policy.managed_policy_arn, None),
            "VideoQueueUrl": (video.queue.queue_url, None),
            "VideoDeadLetterQueueUrl": (video.dead_letters.queue_url, None),
            "VideoBackfillDeadLetterQueueUrl": (video.backfill_dead_letters.queue_url, None),
            "VideoCompletionTopicArn": (video.topic.topic_arn, None),
        }
        for name, (value, setting) in outputs.items():
            CfnOutput(self, name, value=value, description=f"Django setting {setting}" if setting else name)
        self.labeler = labeler
        self.media = media
        self.labels = labels
        self.video = video

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

    def _video_parameters(self) -> dict[str, str]:
        """Which Rekognition Video jobs each video gets (each is billed per minute of video:
        README, "Cost per minute of video") and their minimum confidence."""
        apis = CfnParameter(
            self, "VideoApis", type="String", default="labels,moderation,text",
            allowed_values=["labels,moderation,text", "labels,moderation", "labels,text", "labels", "none"],
            description="Rekognition Video jobs per video: labels (with their boxes and segments), moderation "
                        "(flags a video for moderators), text. none: videos are recorded as not analysed.")
        confidence = CfnParameter(
            self, "VideoMinConfidence", type="Number", default=50, min_value=0, max_value=100,
            description="MinConfidence of the video jobs (labels, moderation, and text's word filter).")
        return {"VIDEO_APIS": apis.value_as_string, "VIDEO_MIN_CONFIDENCE": Token.as_string(confidence.value)}

    def _alarms(self, labeler: Labeler, labels: LabelsTable, email: str, video: VideoAnalysis) -> sns.Topic:
        """One topic for every alarm of the pipeline: uploads in a DLQ, function errors
        and throttles, messages that keep failing, a queue that stops draining (its oldest
        message's age), a Django sync that stopped, and DynamoDB throttling."""
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
            alarm_at_or_above(self, "BackfillDeadLettersAlarm",
                              "Backfill messages the labeler gave up on: inspect and redrive the backfill DLQ.",
                              labeler.backfill_dead_letters.metric_approximate_number_of_messages_visible(
                                  period=Duration.minutes(1), statistic="Maximum"), threshold=1),
            cloudwatch.Alarm(
                self, "MessagesFailedAlarm",
                alarm_description="Labeler messages failed in every 5 minutes for 15 minutes: not a throttle backing "
                                  "off but a pipeline stuck failing (see the labeler's logs).",
                metric=labeler_metric("MessagesFailed", five_minutes), threshold=1,
                evaluation_periods=resources.MESSAGES_FAILED_PERIODS, datapoints_to_alarm=resources.MESSAGES_FAILED_PERIODS,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            # No data is the alarm here: a sync that stopped reports nothing at all.
            cloudwatch.Alarm(
                self, "SyncHeartbeatAlarm",
                alarm_description=f"Django has not synced labels from DynamoDB for {resources.SYNC_HEARTBEAT_MINUTES} "
                                  "minutes: Celery beat or the workers are down (photos stay queued).",
                metric=cloudwatch.Metric(namespace=resources.METRICS_NAMESPACE, metric_name="SyncRuns",
                                         dimensions_map={"service": "django-sync"}, statistic="Sum",
                                         period=Duration.minutes(resources.SYNC_HEARTBEAT_MINUTES)),
                threshold=1, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            ),
            alarm_at_or_above(self, "TableThrottlesAlarm",
                              "DynamoDB throttled the labels table or its sync index: writes and syncs are retried, "
                              "but sustained throttling delays labels (see docs/aws.md, capacity).",
                              table_throttles(labels, five_minutes), threshold=1),
            alarm_at_or_above(self, "FailedRateAlarm",
                              f"Over {resources.FAILED_RATE_ALARM_PERCENT} % of images ended FAILED in 15 minutes: "
                              "Rekognition rejects them or cannot read the bucket (permissions, KMS).",
                              failed_rate(), threshold=resources.FAILED_RATE_ALARM_PERCENT),
            alarm_at_or_above(self, "VideoDeadLettersAlarm",
                              "Videos never started (a day over the jobs quota, or failing): see the starter's logs, "
                              "then redrive the video DLQ.",
                              video.dead_letters.metric_approximate_number_of_messages_visible(
                                  period=Duration.minutes(1), statistic="Maximum"), threshold=1),
            alarm_at_or_above(self, "VideoBackfillDeadLettersAlarm",
                              "Backfilled videos never started (about 10 days behind live uploads, or failing): see "
                              "the starter's logs, then redrive the video backfill DLQ.",
                              video.backfill_dead_letters.metric_approximate_number_of_messages_visible(
                                  period=Duration.minutes(1), statistic="Maximum"), threshold=1),
            alarm_at_or_above(self, "VideoCompletionDeadLettersAlarm",
                              "Video completions the collector gave up on: see its logs, then redrive (a re-sent "
                              "video is collected from its jobs' status too).",
                              video.completion_dead_letters.metric_approximate_number_of_messages_visible(
                                  period=Duration.minutes(1), statistic="Maximum"), threshold=1),
            alarm_at_or_above(self, "VideoQueueAgeAlarm",
                              "A video has waited 6 hours to start its jobs: the concurrent-jobs quota is too small "
                              "for the uploads, or the starter fails.",
                              video.queue.metric_approximate_age_of_oldest_message(period=five_minutes,
                                                                                  statistic="Maximum"),
                              threshold=resources.VIDEO_QUEUE_AGE_ALARM_SECONDS),
            alarm_at_or_above(self, "VideoJobsFailedAlarm",
                              "Rekognition Video failed or refused a video's jobs (the record says why: a codec it "
                              "cannot read, an object it cannot get).",
                              cloudwatch.MathExpression(
                                  expression="FILL(c, 0) + FILL(s, 0)", period=five_minutes, label="Videos FAILED",
                                  using_metrics={"c": videos_failed("video-collector", five_minutes),
                                                 "s": videos_failed("video-starter", five_minutes)}),
                              threshold=1),
            alarm_at_or_above(self, "VideoFunctionErrorsAlarm", "A video function failed (see its logs).",
                              cloudwatch.MathExpression(
                                  expression="FILL(s, 0) + FILL(c, 0)", period=five_minutes,
                                  using_metrics={"s": video.starter.metric_errors(period=five_minutes, statistic="Sum"),
                                                 "c": video.collector.metric_errors(period=five_minutes,
                                                                                    statistic="Sum")}), threshold=1),
        ]
        for alarm in alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
        return topic



def videos_failed(service: str, period: Duration) -> cloudwatch.Metric:
    """Videos whose record says FAILED, counted by the video function that wrote it (the
    collector, or the starter for a refusal or a collection whose notices were lost)."""
    return cloudwatch.Metric(namespace=resources.METRICS_NAMESPACE, metric_name="VideosFailed",
                             dimensions_map={"service": service}, statistic="Sum", period=period)


def labeler_metric(name: str, period: Duration) -> cloudwatch.Metric:
    """One of the labeler's Powertools metrics, summed over ``period``."""
    return cloudwatch.Metric(namespace=resources.METRICS_NAMESPACE, metric_name=name,
                             dimensions_map={"service": "labeler"}, statistic="Sum", period=period)


def table_throttles(labels: LabelsTable, period: Duration) -> cloudwatch.MathExpression:
    """Read and write throttle events of the table and of its sync index (a throttled
    index throttles the writes to the table too)."""
    table = labels.table

    def events(name: str, index: str | None = None) -> cloudwatch.Metric:
        dimensions = {"TableName": table.table_name, **({"GlobalSecondaryIndexName": index} if index else {})}
        return cloudwatch.Metric(namespace="AWS/DynamoDB", metric_name=name, dimensions_map=dimensions,
                                 statistic="Sum", period=period)

    return cloudwatch.MathExpression(
        expression="FILL(r, 0) + FILL(w, 0) + FILL(ir, 0) + FILL(iw, 0)",
        using_metrics={"r": events("ReadThrottleEvents"), "w": events("WriteThrottleEvents"),
                       "ir": events("ReadThrottleEvents", resources.SYNC_INDEX),
                       "iw": events("WriteThrottleEvents", resources.SYNC_INDEX)},
        period=period, label="Throttle events (table and sync index)",
    )


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
