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
