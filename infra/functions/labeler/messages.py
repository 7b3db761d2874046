"""Messages the app sends the labeler's queue, shaped like S3's notifications so the
handler reads them as it reads S3's own. No dependencies: the web app imports this."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any


def event_message(*, bucket: str, key: str, size: int, etag: str, event_time: str, reanalyse: bool = False) -> str:
    """An SQS body shaped like S3's ObjectCreated notification, for what the app asks of
    the labeler itself: re-analysis (``reanalyse``) and backfill of objects that never
    had a record. ``event_time`` is ISO 8601 with milliseconds and a Z."""
    record: dict[str, Any] = {
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": event_time,
        "eventName": "ObjectCreated:Reanalyse" if reanalyse else "ObjectCreated:Backfill",
        "s3": {"bucket": {"name": bucket}, "object": {"key": urllib.parse.quote_plus(key, safe="/"), "size": size, "eTag": etag}},
    }
    if reanalyse:
        record["reanalyse"] = True
    return json.dumps({"Records": [record]})
