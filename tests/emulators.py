"""S3 for tests: moto's server on a free port, and Django storage pointed at a bucket."""

from __future__ import annotations

import contextlib
import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server():
    """moto's S3/SQS/DynamoDB server on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def use_s3_storage(settings, bucket: str, endpoint: str | None = None) -> None:
    """Django's default storage on ``bucket``, configured as production's is."""
    settings.PHOTOS_STORAGE = "s3"
    settings.AWS_STORAGE_BUCKET_NAME = bucket
    options = {
        "bucket_name": bucket, "region_name": "us-east-1", "file_overwrite": False, "default_acl": None,
        "querystring_auth": True, "querystring_expire": 300, "signature_version": "s3v4",
    }
    if endpoint:
        options.update(endpoint_url=endpoint, addressing_style="path")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}}


@contextlib.contextmanager
def moto_s3_storage(settings, monkeypatch, bucket: str, *, versioned: bool = False):
    """Django's storage on a fresh moto bucket (in-process, as a real account: no
    endpoint URL, test credentials); the S3 client for the test to look with."""
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        if versioned:
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        use_s3_storage(settings, bucket)
        yield client
