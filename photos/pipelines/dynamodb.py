"""The web app's side of the labels table: one boto3 Table per thread (boto3 resources
are not thread-safe; the sync runs shards in threads) and DynamoDB's throttling retried
with back-off. What the table's items look like is infra/functions/labeler/table.py's."""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Callable

import boto3
from botocore.config import Config
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from infra.functions.labeler.core import error_code, is_transient

# A transaction cancelled for one of these reasons (throttled, or a concurrent write to
# the same item) is worth another try; its own conditions failing is not.
RETRY_CANCELLATIONS = frozenset({"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"})
RETRY_ATTEMPTS = 6
RETRY_BASE_SECONDS = 0.2

_local = threading.local()


class SyncThrottled(Exception):
    """DynamoDB kept throttling past our retry budget; the Celery task retries later."""


def labels_table() -> Any:
    """This thread's boto3 Table for LABELS_TABLE_NAME, made on first use."""
    name = settings.LABELS_TABLE_NAME
    if not name:
        raise ImproperlyConfigured("LABELS_TABLE_NAME is not set: the AWS pipeline needs the labels table")
    cached = getattr(_local, "tables", {}).get((name, settings.AWS_ENDPOINT_URL, settings.AWS_REGION))
    if cached is None:
        resource = boto3.resource("dynamodb", region_name=settings.AWS_REGION, endpoint_url=settings.AWS_ENDPOINT_URL,
                                  config=Config(retries={"mode": "standard", "max_attempts": 4}))
        cached = resource.Table(name)
        _local.tables = {**getattr(_local, "tables", {}), (name, settings.AWS_ENDPOINT_URL, settings.AWS_REGION): cached}
    return cached


def with_backoff(call: Callable[[], Any], *, attempts: int = RETRY_ATTEMPTS, sleep=time.sleep) -> Any:
    """Call, retrying throttling, server errors and dropped connections with exponential
    backoff and full jitter (on top of botocore's own retries); anything else is raised
    at once."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if not _retryable(exc):
                raise
            if attempt == attempts - 1:
                raise SyncThrottled(str(exc)) from exc
            sleep(random.uniform(0, RETRY_BASE_SECONDS * 2**attempt))
    raise AssertionError("unreachable")


def _retryable(exc: BaseException) -> bool:
    code = error_code(exc)
    if code == "TransactionCanceledException":
        reasons = {r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])}
        return bool(reasons & RETRY_CANCELLATIONS)
    return is_transient(exc)


def batch_get(table: Any, request: dict, *, sleep=time.sleep) -> list[dict]:
    """Every item a BatchGetItem request asks for: keys DynamoDB leaves unprocessed are
    asked for again, with backoff, at most RETRY_ATTEMPTS times; then SyncThrottled
    rather than looping forever."""
    items: list[dict] = []
    attempt = 0
    while request:
        response = with_backoff(lambda: table.meta.client.batch_get_item(RequestItems=request))
        items.extend(response.get("Responses", {}).get(table.name, []))
        request = response.get("UnprocessedKeys") or {}
        if request:
            if attempt >= RETRY_ATTEMPTS:
                raise SyncThrottled(f"DynamoDB left keys unprocessed {attempt} times in a row")
            sleep(random.uniform(0, RETRY_BASE_SECONDS * 2 ** min(attempt, 6)))
            attempt += 1
    return items
