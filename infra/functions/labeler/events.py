"""S3 event notifications as the labeler reads them, and the S3-event-shaped messages
the app sends it (re-analysis, backfill), so the handler reads both the same way.
Powertools' S3 data classes parse the events (the dependencies layer; the web app only
builds messages, which needs nothing but the standard library)."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SEQUENCER_WIDTH = 32  # S3 sequencers differ in length: left-pad to compare as strings


class PoisonMessage(ValueError):
    """A message that will never parse: it goes back to SQS and on to the DLQ."""


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    size: int
    etag: str
    version: str | None
    sequencer: str
    removed: bool = False
    reanalyse: bool = False  # a message from the app, not S3: analyse the current object again
    # A permanent delete (ObjectRemoved:Delete, LifecycleExpiration:Delete): of one
    # version in a versioned bucket, of the object in an unversioned one. The object is
    # erased only if no current version is left; a noncurrent one going is a clean-up.
    one_version: bool = False
    # Sent by the app's backfill (analyse_bucket): a video then waits on the backfill's own
    # video queue, behind every live upload (video.py LiveVideosFirst).
    backfill: bool = False


# What an event name says of the object: created, removed (a delete marker or the only
# copy gone: an erasure), or one of its versions removed. Lifecycle expirations are
# removals too: S3 does not send them as ObjectRemoved.
CREATED = ("ObjectCreated:",)
REMOVED = ("ObjectRemoved:", "LifecycleExpiration:")
ONE_VERSION = ("ObjectRemoved:Delete", "LifecycleExpiration:Delete")
BACKFILL_EVENT = "ObjectCreated:Backfill"


def parse_message(body: str) -> list[S3Object] | None:
    """The objects an SQS message body announces (S3's event, read with Powertools' S3
    data classes); None for S3's test event."""
    # Here, not at the top: the web app imports this module for event_message and has no
    # Powertools (the Lambda's dependencies layer has).
    from aws_lambda_powertools.utilities.data_classes import S3Event

    try:
        event = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise PoisonMessage(f"body is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise PoisonMessage("body is not a JSON object")
    if event.get("Event") == "s3:TestEvent":
        return None
    if not isinstance(event.get("Records"), list):
        raise PoisonMessage("no Records list in the S3 event")
    objects = []
    for n, record in enumerate(S3Event(event).records):
        try:
            name = str(record.event_name or "")
            if not name.startswith(CREATED + REMOVED):
                continue  # restores, replication, tagging...: nothing to analyse or erase
            obj = record.s3.get_object
            objects.append(
                S3Object(
                    bucket=record.s3.bucket.name,
                    # Keys arrive URL-encoded with '+' for spaces (the data class keeps them so).
                    key=urllib.parse.unquote_plus(obj.key),
                    size=int(obj.get("size") or 0),
                    etag=str(obj.get("eTag") or ""),
                    version=obj.get("versionId") or None,
                    sequencer=_sequencer(obj.get("sequencer"), record.get("eventTime")),
                    removed=name.startswith(REMOVED),
                    reanalyse=bool(record.get("reanalyse")),
                    one_version=name in ONE_VERSION,
                    backfill=name == BACKFILL_EVENT,
                )
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise PoisonMessage(f"Records[{n}] is not an S3 event record: {exc!r}") from None
    return objects


def _sequencer(sequencer: Any, event_time: Any) -> str:
    """S3's sequencer, left-padded so that string order is event order (AWS's rule for
    comparing sequencers of one key). Emulators omit it: the event time stands in."""
    if sequencer:
        return str(sequencer).upper().zfill(SEQUENCER_WIDTH)
    if event_time:
        stamp = datetime.strptime(str(event_time).replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
        return format(int(stamp.timestamp() * 1_000_000), "X").zfill(SEQUENCER_WIDTH)
    return "0" * SEQUENCER_WIDTH


def sequencer_after(stored_sequencer: str, obj: S3Object) -> str:
    """A re-analysis's sequencer: after the stored record's (so the new analysis replaces
    it) and after earlier re-analyses: the stored S3 sequencer + "-R" + this request's
    time. A real S3 event for the key (a new object version) still sorts after both."""
    base = (stored_sequencer or "0" * SEQUENCER_WIDTH).split("-R")[0]
    return f"{base}-R{obj.sequencer}"


def event_message(*, bucket: str, key: str, size: int, etag: str, event_time: str, reanalyse: bool = False,
                  backfill: bool = False) -> str:
    """An SQS body shaped like S3's ObjectCreated notification, for what the app asks of
    the labeler itself: re-analysis (``reanalyse``), backfill of objects that never had a
    record (``backfill``) and the sweep's re-send of a lost upload (neither). ``event_time``
    is ISO 8601 with milliseconds and a Z."""
    name = "ObjectCreated:Reanalyse" if reanalyse else BACKFILL_EVENT if backfill else "ObjectCreated:Resend"
    record: dict[str, Any] = {
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": event_time, "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": urllib.parse.quote_plus(key, safe="/"), "size": size, "eTag": etag}},
    }
    if reanalyse:
        record["reanalyse"] = True
    return json.dumps({"Records": [record]})
