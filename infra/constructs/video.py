"""Video analysis with Rekognition Video (issue 22): the video queue and its starter, the
completion topic Rekognition publishes to (through a role it assumes), and the completion
queue and its collector. Both functions are the labeler's package and layer, with their
own handlers (labeler/video.py)."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import resources
from infra.nag import acknowledge
from infra.constructs.labeler import BASIC_EXECUTION_ROLE_FINDING, Labeler, logical_id

START_ACTIONS = ["rekognition:StartLabelDetection", "rekognition:StartContentModeration",
                 "rekognition:StartTextDetection"]
GET_ACTIONS = ["rekognition:GetLabelDetection", "rekognition:GetContentModeration", "rekognition:GetTextDetection"]


class VideoAnalysis(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, table: dynamodb.ITable,
                 labeler: Labeler, settings: dict[str, str], start_concurrency: int | float) -> None:
        """``settings``: VIDEO_APIS and VIDEO_MIN_CONFIDENCE (the stack's parameters)."""
        super().__init__(scope, construct_id)
        # Rekognition publishes each job's completion here. The name starts with
        # AmazonRekognition so the AWS-managed service role could publish too; ours is
        # narrower (this topic only). Not KMS-encrypted: a KMS key would need a key policy
        # for the role Rekognition assumes, and a notice carries a job id, a status and
        # the object's key (a UUID), nothing of the video.
        self.topic = sns.Topic(self, "Completions", topic_name=f"AmazonRekognition-{Aws.STACK_NAME}-video",
                               enforce_ssl=True)
        acknowledge(self.topic, "AwsSolutions::AwsSolutions-SNS2",
                    "Rekognition Video publishes job ids and object keys only; see the construct's comment.")
        self.publisher = iam.Role(
            self, "RekognitionPublisher",
            # Confused-deputy guard: only Rekognition acting for this account assumes it.
            assumed_by=iam.ServicePrincipal("rekognition.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}),
            description="Assumed by Rekognition Video to publish job completions to the video topic.",
        )
        self.publisher.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))

        def queue_pair(name: str, *, visibility: int, receives: int,
                       retention: int = resources.VIDEO_QUEUE_RETENTION_DAYS) -> tuple[sqs.Queue, sqs.Queue]:
            dead = sqs.Queue(self, f"{name}DeadLetters", retention_period=Duration.days(resources.DLQ_RETENTION_DAYS),
                             encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True)
            live = sqs.Queue(self, f"{name}Queue", visibility_timeout=Duration.seconds(visibility),
                             retention_period=Duration.days(retention),
                             dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=receives, queue=dead),
                             encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True)
            return live, dead

        # Starting waits on the concurrent-jobs quota: many tries, each hidden longer.
        self.queue, self.dead_letters = queue_pair(
            "Start", visibility=6 * resources.VIDEO_FUNCTION_TIMEOUT_SECONDS, receives=resources.VIDEO_MAX_RECEIVES)
        # A backfill's videos: their own queue, behind the live uploads' (the starter starts
        # one only while the live queue is empty: labeler/video.py LiveVideosFirst).
        self.backfill_queue, self.backfill_dead_letters = queue_pair(
            "BackfillStart", visibility=6 * resources.VIDEO_FUNCTION_TIMEOUT_SECONDS,
            receives=resources.VIDEO_BACKFILL_MAX_RECEIVES, retention=resources.VIDEO_BACKFILL_RETENTION_DAYS)
        self.completions, self.completion_dead_letters = queue_pair(
            "Completion", visibility=6 * resources.VIDEO_FUNCTION_TIMEOUT_SECONDS, receives=resources.DLQ_MAX_RECEIVE_COUNT)
        self.topic.add_subscription(subscriptions.SqsSubscription(self.completions))

        common = {
            "LABELS_TABLE_NAME": table.table_name, "UPLOAD_PREFIX": resources.UPLOAD_PREFIX,
            "POWERTOOLS_METRICS_NAMESPACE": resources.METRICS_NAMESPACE, "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        code = labeler.code
        self.starter = lambda_.Function(
            self, "Starter", runtime=labeler.function.runtime, architecture=labeler.function.architecture,
            handler="labeler.video.start_handler", code=code, layers=[labeler.dependencies],
            timeout=Duration.seconds(resources.VIDEO_FUNCTION_TIMEOUT_SECONDS), memory_size=256,
            environment={**common, **settings, "POWERTOOLS_SERVICE_NAME": "video-starter",
                         "VIDEO_TOPIC_ARN": self.topic.topic_arn, "VIDEO_ROLE_ARN": self.publisher.role_arn,
                         "LIVE_VIDEO_QUEUE_URL": self.queue.queue_url},
            log_group=logs.LogGroup(self, "StarterLogs", retention=logs.RetentionDays.ONE_MONTH),
            description="Starts Rekognition Video's jobs for each uploaded video (labeler/video.py).",
        )
        self.starter.add_event_source(sources.SqsEventSource(
            self.queue, batch_size=1, report_batch_item_failures=True, max_concurrency=start_concurrency))
        # The backfill's lane: two at a time (the least an SQS event source allows).
        self.starter.add_event_source(sources.SqsEventSource(
            self.backfill_queue, batch_size=1, report_batch_item_failures=True, max_concurrency=2))
        self.starter.add_to_role_policy(iam.PolicyStatement(actions=["sqs:GetQueueAttributes"],
                                                            resources=[self.queue.queue_arn]))
        self.collector = lambda_.Function(
            self, "Collector", runtime=labeler.function.runtime, architecture=labeler.function.architecture,
            handler="labeler.video.collect_handler", code=code, layers=[labeler.dependencies],
            timeout=Duration.seconds(resources.VIDEO_FUNCTION_TIMEOUT_SECONDS), memory_size=1024,
            environment={**common, "POWERTOOLS_SERVICE_NAME": "video-collector"},
            log_group=logs.LogGroup(self, "CollectorLogs", retention=logs.RetentionDays.ONE_MONTH),
            description="Pages Rekognition Video's results into the timeline and the record (labeler/video.py).",
        )
        # A few collectors at once: each pages Get* results, and Get* allows 5-20 calls a
        # second per account (docs/aws.md).
        self.collector.add_event_source(sources.SqsEventSource(
            self.completions, batch_size=resources.SQS_BATCH_SIZE, report_batch_item_failures=True,
            max_concurrency=resources.VIDEO_COLLECT_CONCURRENCY))

        # The labeler hands videos to the starter's queue.
        labeler.function.add_environment("VIDEO_QUEUE_URL", self.queue.queue_url)
        labeler.function.add_environment("VIDEO_BACKFILL_QUEUE_URL", self.backfill_queue.queue_url)
        self.queue.grant_send_messages(labeler.function)
        self.backfill_queue.grant_send_messages(labeler.function)

        uploads = f"{bucket.bucket_arn}/{resources.UPLOAD_PREFIX}*"
        timelines = f"{bucket.bucket_arn}/{resources.RENDITION_PREFIX}*"
        # Start*: Rekognition reads the video with the caller's permissions, and takes the
        # publisher role, which the starter may pass to Rekognition and to nothing else.
        self.starter.add_to_role_policy(iam.PolicyStatement(actions=START_ACTIONS, resources=["*"]))
        self.starter.add_to_role_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.publisher.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "rekognition.amazonaws.com"}}))
        # Rekognition reads the video, or for one it cannot read (HEVC, WebM) the app's H.264
        # stream rendition, with the starter's permissions; the starter reads a video's
        # container (ranged GETs) for its codec, and asks whether the stream is made yet
        # (HeadObject: 404 with s3:ListBucket, 403 without).
        self.starter.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion"],
                                                            resources=[uploads, timelines]))
        self.starter.add_to_role_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]))
        # A duplicate start asks running jobs for their status (a lost completion).
        self.starter.add_to_role_policy(iam.PolicyStatement(actions=GET_ACTIONS, resources=["*"]))
        # Query: the tombstone and the record; the jobs item and a SKIPPED record, each
        # written in a transaction with the tombstone's check; the collector's path when a
        # lost completion is settled (UpdateItem, DeleteItem, S3 writes below).
        table_actions = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                         "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
        for function in (self.starter, self.collector):
            function.add_to_role_policy(iam.PolicyStatement(actions=table_actions, resources=[table.table_arn]))
            # DeleteObjectVersion: a timeline written after its video's erasure goes, every byte.
            function.add_to_role_policy(iam.PolicyStatement(
                actions=["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"], resources=[timelines]))
        self.collector.add_to_role_policy(iam.PolicyStatement(actions=GET_ACTIONS, resources=["*"]))

        for function in (self.starter, self.collector):
            acknowledge(function, "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                        "Rekognition Video's Start*/Get* actions do not support resource-level permissions.")
            acknowledge(function, f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/"
                                  f"{resources.RENDITION_PREFIX}*]",
                        "Timelines are written under the rendition prefix; keys are UUIDs not known in advance.")
            acknowledge(function, BASIC_EXECUTION_ROLE_FINDING,
                        "The AWS managed basic execution role grants only CloudWatch Logs writes.")
        acknowledge(self.starter, f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/"
                                  f"{resources.UPLOAD_PREFIX}*]",
                    "Rekognition reads videos with the caller's permissions, under the upload prefix.")
