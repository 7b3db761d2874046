"""The private media bucket and the bucket that receives its server access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import resources
from infra.nag import acknowledge


# Every bucket here: private, encrypted, TLS only, no ACLs, kept when the stack goes.
SECURE_BUCKET = {
    "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
    "encryption": s3.BucketEncryption.S3_MANAGED,
    "enforce_ssl": True,
    "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    "removal_policy": RemovalPolicy.RETAIN,
}


class MediaBucket(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cors_origins: list[str]) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            **SECURE_BUCKET,
            # Logs are evidence: kept a year, and they outlive the stack.
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(resources.ACCESS_LOG_EXPIRATION_DAYS))],
        )
        acknowledge(self.access_logs, "AwsSolutions-S1",
            "This is the access-log bucket itself; logging it into itself would loop.",
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            **SECURE_BUCKET,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="media-bucket/",
            cors=[
                # Browsers upload straight to S3 with presigned POST/PUT and read images
                # through presigned GET URLs.
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods(m) for m in resources.CORS_ALLOWED_METHODS],
                    allowed_origins=cors_origins,
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3000,
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(resources.NONCURRENT_VERSION_EXPIRATION_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                # Direct uploads never confirmed (a closed tab, a refused file the app
                # could not delete): gone after a day, every version of them; a video's
                # multipart upload never finished, the day after it can no longer resume.
                s3.LifecycleRule(
                    prefix=resources.INCOMING_PREFIX,
                    expiration=Duration.days(resources.INCOMING_EXPIRATION_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(resources.INCOMING_MULTIPART_DAYS),
                    noncurrent_version_expiration=Duration.days(1),
                ),
            ],
        )
