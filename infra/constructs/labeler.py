"""S3 notifications -> SQS (with a DLQ and an alarm on it) -> the labeler Lambda."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import BundlingOptions, DockerImage, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import resources
from infra.bundling import PipLayer
from infra.nag import acknowledge

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
LAYERS_DIR = Path(__file__).resolve().parent.parent / "layers"
BASIC_EXECUTION_ROLE_FINDING = (
    "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)
REKOGNITION_ACTIONS = ["rekognition:DetectLabels", "rekognition:DetectModerationLabels", "rekognition:DetectText"]


class Labeler(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        table: dynamodb.ITable,
        max_concurrency: int | float,
        backfill_concurrency: int | float = resources.DEFAULT_BACKFILL_CONCURRENCY,
        reserved_concurrency: int | float | None = None,
        analysis: dict[str, str] | None = None,
    ) -> None:
        """``analysis``: the handler's feature switches and floors as environment values
        (DETECT_MODERATION, DETECT_TEXT, IMAGE_PROPERTIES, MAX_LABELS,
        MIN_LABEL_CONFIDENCE; the stack's parameters); unset means the defaults."""
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            retention_period=Duration.days(resources.DLQ_RETENTION_DAYS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=Duration.seconds(resources.QUEUE_VISIBILITY_SECONDS),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=resources.DLQ_MAX_RECEIVE_COUNT, queue=self.dead_letters),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        # The backfill's lane: its own queue, DLQ and poller, so a backlog of millions never
        # delays a live upload, and waits up to 14 days instead of expiring after SQS's 4.
        self.backfill_dead_letters = sqs.Queue(
            self, "BackfillDeadLetters", retention_period=Duration.days(resources.DLQ_RETENTION_DAYS),
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
        )
        self.backfill_queue = sqs.Queue(
            self, "BackfillQueue",
            visibility_timeout=Duration.seconds(resources.QUEUE_VISIBILITY_SECONDS),
            retention_period=Duration.days(resources.BACKFILL_RETENTION_DAYS),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=resources.DLQ_MAX_RECEIVE_COUNT,
                                                  queue=self.backfill_dead_letters),
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
        )
        self.dlq_alarm = alarm_at_or_above(
            self, "DeadLettersAlarm", "Uploads the labeler gave up on: inspect and redrive the DLQ.",
            self.dead_letters.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
            threshold=1,
        )
        # Created objects are analysed; removed ones (in the app or outside it, by hand or
        # by a lifecycle rule: S3 sends those as LifecycleExpiration, not ObjectRemoved)
        # leave an erasure tombstone, so the photo leaves Django too and nothing brings it
        # back; a removed noncurrent version is not an erasure (the handler checks).
        # Every object under the prefix: suffix filters are case-sensitive (Chelsea.JPG).
        for event in (s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED, s3.EventType.LIFECYCLE_EXPIRATION):
            bucket.add_event_notification(
                event, s3n.SqsDestination(self.queue), s3.NotificationKeyFilter(prefix=resources.NOTIFIED_PREFIX)
            )

        log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_MONTH)
        runtime, architecture = lambda_.Runtime.PYTHON_3_14, lambda_.Architecture.ARM_64
        # Powertools, Pillow and pi-heif, in a layer built without Docker (infra/bundling.py): pip
        # installs the hash-locked wheels for this runtime and architecture.
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(
                str(LAYERS_DIR / "labeler"),
                bundling=BundlingOptions(
                    image=DockerImage.from_registry("unused-local-bundling-always-succeeds"),
                    local=PipLayer(LAYERS_DIR / "labeler" / "requirements.txt",
                                   platforms=["manylinux_2_28_aarch64", "manylinux2014_aarch64"], python_version="3.14"),
                ),
            ),
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            description="The labeler's dependencies: aws-lambda-powertools, Pillow, pi-heif (infra/layers/labeler/requirements.txt).",
        )
        # The asset is the labeler package alone: record, core, handler...; boto3 comes
        # from the runtime, the rest from the layer. The video functions share it.
        self.code = lambda_.Code.from_asset(
            str(FUNCTIONS_DIR), exclude=["*", "!labeler", "!labeler/*.py", "**/__pycache__", "*.pyc"]
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=runtime,
            architecture=architecture,
            handler="labeler.handler.handler",
            code=self.code,
            layers=[self.dependencies],
            timeout=Duration.seconds(resources.LABELER_TIMEOUT_SECONDS),
            memory_size=resources.LABELER_MEMORY_MB,
            # AWS's advice with MaximumConcurrency on SQS event sources: reserve at least
            # the sum of the mappings' maximums, so other functions in the account can
            # never take the capacity the pollers count on.
            reserved_concurrent_executions=reserved_concurrency,
            environment={
                "LABELS_TABLE_NAME": table.table_name,
                "UPLOAD_PREFIX": resources.UPLOAD_PREFIX,
                "POWERTOOLS_SERVICE_NAME": "labeler",
                "POWERTOOLS_METRICS_NAMESPACE": resources.METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **(analysis or {}),
            },
            log_group=log_group,
            description="Labels uploaded photos with Amazon Rekognition and records them in DynamoDB.",
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=resources.SQS_BATCH_SIZE,
                report_batch_item_failures=True,
                # The poller stops at this many concurrent functions, so a burst waits in
                # the queue instead of burning receive counts on throttled invocations.
                max_concurrency=max_concurrency,
            )
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.backfill_queue, batch_size=resources.SQS_BATCH_SIZE, report_batch_item_failures=True,
                max_concurrency=backfill_concurrency,
            )
        )
        # Least privilege, spelled out: grant_read() would add s3:GetBucket*/List* and
        # table.grant() the index ARNs, neither of which the handler uses.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[f"{bucket.bucket_arn}/{resources.UPLOAD_PREFIX}*"],
            )
        )
        # HeadObject after a version's removal tells whether the object remains: with
        # s3:ListBucket a missing key is a 404, without it a 403 the handler cannot read.
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]))
        self.function.add_to_role_policy(
            # Query: a key's record and tombstone in one read (the table, no index);
            # PutItem/ConditionCheckItem: the record, written only if no tombstone is there
            # (one transaction); DeleteItem: the record, when a tombstone replaces it.
            iam.PolicyStatement(
                actions=["dynamodb:Query", "dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem"],
                resources=[table.table_arn],
            )
        )
        self.function.add_to_role_policy(iam.PolicyStatement(actions=REKOGNITION_ACTIONS, resources=["*"]))

        acknowledge(self.function, "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "Rekognition's Detect* actions do not support resource-level permissions; they require '*'.",
        )
        acknowledge(self.function, f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/{resources.UPLOAD_PREFIX}*]",
            "Read access is scoped to the upload prefix; object keys are not known in advance.",
        )
        acknowledge(self.function, BASIC_EXECUTION_ROLE_FINDING,
            "The AWS managed basic execution role grants only CloudWatch Logs writes.",
        )


def alarm_at_or_above(scope: Construct, construct_id: str, description: str, metric: cloudwatch.IMetric, *,
                      threshold: float) -> cloudwatch.Alarm:
    """An alarm when one period of ``metric`` reaches ``threshold``; no data is not a breach."""
    return cloudwatch.Alarm(
        scope, construct_id, alarm_description=description, metric=metric, threshold=threshold, evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


def logical_id(resource) -> str:
    """The logical id cdk-nag names in its findings for this resource."""
    from aws_cdk import Stack

    return Stack.of(resource).get_logical_id(resource.node.default_child)
