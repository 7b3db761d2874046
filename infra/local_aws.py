"""`make run-aws-local`: the whole AWS path on this machine, no AWS account needed.

- moto's server emulates S3, SQS and DynamoDB on 127.0.0.1 (port 5055 by default);
- the bucket, queue + DLQ, table + sync index and the bucket notifications are created
  with the names' shapes and the settings the CDK stack deploys (infra/resources.py);
- a runner long-polls the queue and invokes the real Lambda handler with real SQS event
  shapes, LocalRekognition standing in for Amazon Rekognition (moto's Rekognition is
  canned and has no moderation); messages the handler reports failed stay on the queue
  and reach the DLQ after the stack's maxReceiveCount;
- videos take the stack's video path: the labeler queues them, the real starter starts
  Rekognition Video's jobs on infra/local_video.py (which answers from the local worker's
  frame-by-frame analysis and publishes each completion to an SNS topic subscribed by the
  completion queue), and the real collector pages the results into the timeline;
- the Django app runs with PHOTOS_PIPELINE=aws and PHOTOS_STORAGE=s3 against the
  emulator: web, Celery worker and beat (sync_labels every few seconds), or, without
  Redis, a `sync_labels --every` loop.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra import resources  # noqa: E402

logger = logging.getLogger("local_aws")
REGION = "us-east-1"


@dataclass(frozen=True)
class LocalAws:
    endpoint: str
    bucket: str
    table: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    backfill_url: str = ""
    backfill_arn: str = ""
    video_url: str = ""  # the video starter's queue
    video_arn: str = ""
    completion_url: str = ""  # Rekognition Video's notices, from the topic
    completion_arn: str = ""
    topic_arn: str = ""

    def lambda_env(self) -> dict[str, str]:
        """What the stack gives the labeler and the video functions (infra/constructs)."""
        return {"VIDEO_QUEUE_URL": self.video_url, "VIDEO_TOPIC_ARN": self.topic_arn,
                "VIDEO_ROLE_ARN": "arn:aws:iam::123456789012:role/local-rekognition-publisher",
                "VIDEO_APIS": os.environ.get("VIDEO_APIS", "labels,moderation,text"),
                "VIDEO_MIN_CONFIDENCE": os.environ.get("VIDEO_MIN_CONFIDENCE", "50")}

    def django_env(self) -> dict[str, str]:
        return {
            "PHOTOS_PIPELINE": "aws",
            "PHOTOS_STORAGE": "s3",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "LABELS_TABLE_NAME": self.table,
            "LABELER_QUEUE_URL": self.queue_url,
            "LABELER_DLQ_URL": self.dlq_url,
            "LABELER_BACKFILL_QUEUE_URL": self.backfill_url,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_S3_ADDRESSING_STYLE": "path",
            "CSP_MEDIA_ORIGINS": self.endpoint,
        }


def boto(service: str, endpoint: str):
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="local",
                        aws_secret_access_key="local")


def create_resources(endpoint: str, *, prefix: str = "mediaapp-local") -> LocalAws:
    """Create (or reuse) the emulated resources with the stack's settings."""
    s3, sqs, dynamodb = boto("s3", endpoint), boto("sqs", endpoint), boto("dynamodb", endpoint)
    bucket, table = f"{prefix}-media", f"{prefix}-labels"
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedMethods": resources.CORS_ALLOWED_METHODS, "AllowedOrigins": ["*"], "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000}]})

    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dead-letters", Attributes={
        "MessageRetentionPeriod": str(resources.DLQ_RETENTION_DAYS * 86400)})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=f"{prefix}-labeler", Attributes={
        "VisibilityTimeout": str(resources.QUEUE_VISIBILITY_SECONDS),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": resources.DLQ_MAX_RECEIVE_COUNT}),
    })["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    backfill_dlq = sqs.create_queue(QueueName=f"{prefix}-backfill-dead-letters", Attributes={
        "MessageRetentionPeriod": str(resources.DLQ_RETENTION_DAYS * 86400)})["QueueUrl"]
    backfill_dlq_arn = sqs.get_queue_attributes(QueueUrl=backfill_dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    backfill_url = sqs.create_queue(QueueName=f"{prefix}-backfill", Attributes={
        "VisibilityTimeout": str(resources.QUEUE_VISIBILITY_SECONDS),
        "MessageRetentionPeriod": str(resources.BACKFILL_RETENTION_DAYS * 86400),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": backfill_dlq_arn,
                                     "maxReceiveCount": resources.DLQ_MAX_RECEIVE_COUNT}),
    })["QueueUrl"]
    backfill_arn = sqs.get_queue_attributes(QueueUrl=backfill_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def queue_with_dlq(name: str, receives: int, visibility: int) -> tuple[str, str]:
        dead = sqs.create_queue(QueueName=f"{prefix}-{name}-dead-letters")["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=f"{prefix}-{name}", Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": receives})})["QueueUrl"]
        return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    video_url, video_arn = queue_with_dlq("video-start", resources.VIDEO_MAX_RECEIVES,
                                          6 * resources.VIDEO_FUNCTION_TIMEOUT_SECONDS)
    completion_url, completion_arn = queue_with_dlq("video-completions", resources.DLQ_MAX_RECEIVE_COUNT,
                                                    6 * resources.VIDEO_FUNCTION_TIMEOUT_SECONDS)
    sns = boto("sns", endpoint)
    topic_arn = sns.create_topic(Name=f"AmazonRekognition-{prefix}-video")["TopicArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=completion_arn)

    if table not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(**resources.table_definition(table))
        dynamodb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})

    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], "Filter": {"Key": {"FilterRules": [
            {"Name": "prefix", "Value": resources.NOTIFIED_PREFIX}]}}}]})
    return LocalAws(endpoint=endpoint, bucket=bucket, table=table, queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url,
                    backfill_url=backfill_url, backfill_arn=backfill_arn, video_url=video_url, video_arn=video_arn,
                    completion_url=completion_url, completion_arn=completion_arn, topic_arn=topic_arn)


class LambdaRunner:
    """Delivers the queue's messages to the real handler, as the SQS event source does."""

    def __init__(self, aws: LocalAws, *, rekognition: Any = None, synchronous_video: bool = False):
        import boto3

        os.environ.update(aws.lambda_env())  # the handlers read it at each call, as in Lambda
        from infra.functions.labeler import handler, video

        self.aws = aws
        self.video = video
        self.sqs = boto("sqs", aws.endpoint)
        self.handler = handler
        s3 = boto("s3", aws.endpoint)
        if rekognition is None:
            from photos.analysis import LocalRekognition

            def read(bucket: str, name: str, version: str | None) -> bytes:
                args = {"Bucket": bucket, "Key": name, **({"VersionId": version} if version else {})}
                try:
                    return s3.get_object(**args)["Body"].read()
                except s3.exceptions.NoSuchKey as exc:
                    raise FileNotFoundError(name) from exc

            from infra.local_video import LocalRekognitionVideo

            rekognition = LocalRekognitionVideo(LocalRekognition(reader=read, label_models=None), s3,
                                                boto("sns", aws.endpoint), synchronous=synchronous_video)
        handler.REKOGNITION = rekognition
        # Every client the handler uses points at this emulator (they are module-wide).
        handler.S3, handler.SQS = s3, self.sqs
        handler.TABLE = boto3.resource("dynamodb", endpoint_url=aws.endpoint, region_name=REGION,
                                       aws_access_key_id="local", aws_secret_access_key="local").Table(aws.table)

    def poll_once(self, wait_seconds: int = 0, *, backfill: bool = False) -> dict[str, int]:
        """One batch from the live queue (or the backfill's), as its event source mapping
        would deliver it."""
        queue_url, queue_arn = ((self.aws.backfill_url, self.aws.backfill_arn) if backfill
                                else (self.aws.queue_url, self.aws.queue_arn))
        return self._deliver(queue_url, queue_arn, self.handler.handler, wait_seconds=wait_seconds)

    def poll_videos(self) -> dict[str, int]:
        """One batch of each video queue: videos to start, then completions to collect."""
        started = self._deliver(self.aws.video_url, self.aws.video_arn, self.video.start_handler, batch=1)
        collected = self._deliver(self.aws.completion_url, self.aws.completion_arn, self.video.collect_handler)
        return {key: started[key] + collected[key] for key in started}

    def _deliver(self, queue_url: str, queue_arn: str, handler: Any, *, wait_seconds: int = 0,
                 batch: int = resources.SQS_BATCH_SIZE) -> dict[str, int]:
        response = self.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=batch,
            WaitTimeSeconds=wait_seconds, AttributeNames=["All"], MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return {"received": 0, "failed": 0}
        event = {"Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
             "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
             "awsRegion": REGION}
            for m in messages
        ]}
        result = handler(event, LambdaContext())
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)])
        # Failed messages are left alone: SQS redelivers them after the visibility
        # timeout, and moves them to the DLQ after maxReceiveCount receives.
        return {"received": len(messages), "failed": len(failed)}

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                # Two lanes, as the two event source mappings: a backfill never holds up
                # a live upload (the live queue is asked first, every round).
                busy = self.poll_videos()["received"]
                if not self.poll_once(backfill=True)["received"]:
                    self.poll_once(wait_seconds=0 if busy else 1)  # idle: long-poll the live queue
                else:
                    self.poll_once()
            except Exception:
                logger.exception("runner: delivering a batch failed")
                stop.wait(1)


class LambdaContext:
    """What Lambda passes the handler (Powertools' Logger reads the names and ids)."""

    function_name = "labeler-local"
    memory_limit_in_mb = resources.LABELER_MEMORY_MB
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:labeler-local"

    def __init__(self, left_ms: int = resources.LABELER_TIMEOUT_SECONDS * 1000):
        self.aws_request_id = str(uuid.uuid4())
        self.left_ms = left_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.left_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "5055")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.moto_port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{args.moto_port}"
    aws = create_resources(endpoint)
    print(f"Emulated AWS on {endpoint}: bucket {aws.bucket}, table {aws.table}, queue {aws.queue_url}", flush=True)

    # The emulated Rekognition Video analyses videos with the worker's own code, which
    # reads Django's settings (the sampling interval, the frame cap): this process is
    # configured as the app is.
    os.environ.update({**aws.django_env(), "DJANGO_SETTINGS_MODULE": "mediaapp.settings"})
    import django

    django.setup()
    stop = threading.Event()
    runner = LambdaRunner(aws)
    threading.Thread(target=runner.run, args=(stop,), name="lambda-runner", daemon=True).start()
    print("Lambda runner: SQS -> infra/functions/labeler/handler.py with LocalRekognition; videos -> "
          "labeler/video.py with Rekognition Video emulated from the local worker's analysis (infra/local_video.py)",
          flush=True)

    env = {**os.environ, **aws.django_env(), "SYNC_INTERVAL_SECONDS": os.environ.get("SYNC_INTERVAL_SECONDS", "5")}
    python = sys.executable
    for command in (["migrate", "--noinput"], ["ensure_roles"], ["ensure_admin"]):
        subprocess.run([python, "manage.py", *command], cwd=ROOT, env=env, check=True)
    children = [subprocess.Popen([python, "manage.py", "serve"], cwd=ROOT, env=env)]
    from photos.management.commands.serve import broker_reachable

    if not broker_reachable(env.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")):
        children.append(subprocess.Popen([python, "manage.py", "sync_labels", "--every", env["SYNC_INTERVAL_SECONDS"]],
                                         cwd=ROOT, env=env))
        print("No Redis: the DynamoDB sync runs in its own loop process.", flush=True)

    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: stopping.set())
    signal.signal(signal.SIGTERM, lambda *a: stopping.set())
    try:
        while not stopping.is_set() and all(c.poll() is None for c in children):
            stopping.wait(0.3)
    finally:
        stop.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
