"""Rekognition Video's asynchronous jobs for one video: starting them idempotently,
reading their completion notices, and paging every result into the same timeline the
local worker writes (timeline.py) and one summary record.

AWS facts this module relies on (Rekognition Developer Guide, "Calling Amazon Rekognition
Video operations", and the API reference, read 2026-12-07):

- ``StartLabelDetection``, ``StartContentModeration`` and ``StartTextDetection`` take
  ``Video.S3Object`` (Bucket, Name, Version), ``ClientRequestToken`` (1-64 characters of
  ``[a-zA-Z0-9-_]``: the same token returns the same JobId instead of a second job),
  ``JobTag`` (1-1,024 characters of ``[a-zA-Z0-9_.\\-:]``, returned in the notice) and
  ``NotificationChannel`` (SNSTopicArn, RoleArn).
- Over the concurrent-jobs quota a Start* raises ``LimitExceededException`` and nothing
  is queued on AWS's side; throttling raises ``ThrottlingException``. Both are transient
  here (core.TRANSIENT_CODES): the caller retries the message later.
- The notice published to SNS is JSON: ``JobId``, ``Status`` (SUCCEEDED, FAILED,
  ERROR), ``API`` (the Start* name), ``JobTag``, ``Timestamp``, ``Video`` (S3ObjectName,
  S3Bucket). Delivered to SQS it is wrapped in SNS's envelope unless raw delivery is on.
- ``Get*`` results page with ``MaxResults`` (at most 1,000) and ``NextToken``;
  ``GetLabelDetection`` aggregates by ``TIMESTAMPS`` or ``SEGMENTS``. Results are kept
  only for a while, so the collector stores them.

Pure Python on boto3's client interface: the Lambda and the offline runner use it, and
the tests drive it with botocore's Stubber.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import PurePosixPath
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterator

from .record import (
    STATUS_FAILED, STATUS_LABELED, AnalysisError, Box, Instance, Label, LabelRecord, ModerationLabel, TextDetection,
    now_iso,
)
from .timeline import FrameAnalysis, summary_record

# The jobs a video gets, by the name the notice carries in ``API``; "labels" etc. are the
# stack parameter's names for them (VIDEO_APIS) and the timeline's keys.
APIS = {"labels": "StartLabelDetection", "moderation": "StartContentModeration", "text": "StartTextDetection"}
GET_CALLS = {"StartLabelDetection": "get_label_detection", "StartContentModeration": "get_content_moderation",
             "StartTextDetection": "get_text_detection"}
PAGE_SIZE = 1000  # the Get* calls' MaxResults ceiling
# Rekognition Video reads these containers, H.264 only (the app also takes WebM, and HEVC
# in MOV/MP4: the starter has those analysed through the app's H.264 stream rendition).
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi")
# Every video the app accepts (photos/video.py): the labeler forwards these.
ALL_VIDEO_SUFFIXES = VIDEO_SUFFIXES + (".webm",)
TAG_PREFIX = "mediaapp-v1"
# Where a video's timeline is kept, beside its renditions: the prefix infra/resources.py
# grants the web app (RENDITION_PREFIX, the same string; a test holds them together).
TIMELINE_PREFIX = "renditions/"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class NotAJobNotice(ValueError):
    """An SQS message that is not a Rekognition completion notice (a poison message)."""


def is_video(key: str) -> bool:
    return key.lower().endswith(ALL_VIDEO_SUFFIXES)


def video_message(obj: Any) -> str:
    """The video queue's message for an S3Object (events.py): its fields as JSON."""
    return json.dumps({"video": asdict(obj)})


def _rendition_stem(object_key: str) -> str:
    """``renditions/<uuid>`` for the app's keys (``uploads/<yyyy>/<mm>/<uuid>.<ext>``, the
    uuid being the photo's), a digest of the key for anything else put in the bucket (two
    folders may hold the same name)."""
    stem = PurePosixPath(object_key).stem
    name = stem if _UUID.match(stem) else hashlib.sha256(object_key.encode()).hexdigest()[:32]
    return f"{TIMELINE_PREFIX}{name}"


def timeline_key(object_key: str) -> str:
    """The timeline object of a video, beside its renditions."""
    return f"{_rendition_stem(object_key)}.timeline.json"


def stream_key(object_key: str) -> str:
    """A video's stream rendition (H.264 in MP4, made by the app's worker): what
    Rekognition Video analyses when the original is not H.264."""
    return f"{_rendition_stem(object_key)}.mp4"


# Sample entry formats of a video track (the ``stsd`` box of MP4/MOV): what the codec is,
# read from the container alone (no decoder in the Lambda).
SAMPLE_ENTRIES = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc", b"av01": "av1",
                  b"vp09": "vp9", b"mp4v": "mpeg4"}
MOOV_READ_BYTES = 512 * 1024  # a track's sample description sits near the start of moov


def container_codec(read: Any, size: int) -> str | None:
    """The video codec an MP4/MOV names, walking its top-level boxes with ranged reads
    (``read(start, length) -> bytes``) to ``moov`` wherever it is (phones write it last);
    None if it cannot tell (Rekognition then says)."""
    offset = 0
    for _ in range(64):  # ftyp, free, mdat, moov...: a handful of top-level boxes
        if offset + 8 > size:
            return None
        header = read(offset, 16)
        if len(header) < 8:
            return None
        length, kind = int.from_bytes(header[:4], "big"), header[4:8]
        header_size = 8
        if length == 1 and len(header) >= 16:  # a 64-bit size
            length, header_size = int.from_bytes(header[8:16], "big"), 16
        elif length == 0:  # to the end of the file
            length = size - offset
        if kind == b"moov":
            moov = read(offset + header_size, min(length - header_size, MOOV_READ_BYTES))
            at = moov.find(b"stsd")
            while at >= 0:
                entry = moov[at + 16 : at + 20]  # type, version/flags, entry count, entry size: then its format
                if entry in SAMPLE_ENTRIES:
                    return SAMPLE_ENTRIES[entry]
                at = moov.find(b"stsd", at + 4)
            return None
        if length < header_size:
            return None
        offset += length
    return None


def job_token(bucket: str, key: str, version: str | None, api: str, settings: str = "") -> str:
    """``ClientRequestToken``: one per (object version, API, request settings), so a
    duplicate event, a retried message or a second starter gets the job already started
    (for 7 days), not another. The settings (MinConfidence) are in it because the same
    token with other parameters is refused (IdempotentParameterMismatchException)."""
    digest = hashlib.sha256(f"{bucket}\0{key}\0{version or ''}\0{api}\0{settings}".encode()).hexdigest()
    return digest[:64]


def job_tag(key: str, version: str | None) -> str:
    """``JobTag``: which version of which object the job read (S3 keys hold "/" and
    spaces, which a tag may not: a digest of both). A notice whose tag is not the
    current version's is stale (the object was replaced meanwhile)."""
    digest = hashlib.sha256(f"{key}\0{version or ''}".encode()).hexdigest()
    return f"{TAG_PREFIX}:{digest[:40]}"


def start_requests(*, bucket: str, key: str, version: str | None, apis: tuple[str, ...], topic_arn: str,
                   role_arn: str, min_confidence: float, tag: str | None = None,
                   again: str = "") -> dict[str, dict[str, Any]]:
    """The Start* requests for a video (``key``: the object Rekognition reads, the video
    or its stream rendition; ``tag``: the video's, by default this object's): Start*
    name -> its parameters."""
    video = {"S3Object": {"Bucket": bucket, "Name": key, **({"Version": version} if version else {})}}
    channel = {"SNSTopicArn": topic_arn, "RoleArn": role_arn}
    requests = {}
    for name in apis:
        api = APIS[name]
        job_tag_ = tag or job_tag(key, version)
        # Every parameter is in the token: the same token with other parameters is refused.
        settings = f"{float(min_confidence)}\0{job_tag_}\0{topic_arn}\0{role_arn}\0{again}"
        request: dict[str, Any] = {"Video": video, "ClientRequestToken": job_token(bucket, key, version, api, settings),
                                   "JobTag": job_tag_, "NotificationChannel": channel}
        if name in ("labels", "moderation"):
            request["MinConfidence"] = float(min_confidence)
        if name == "text":
            request["Filters"] = {"WordFilter": {"MinConfidence": float(min_confidence)}}
        requests[api] = request
    return requests


def start_jobs(rekognition: Any, requests: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Start each job (idempotent by its token): Start* name -> JobId. Throttling and
    LimitExceeded are raised for the caller's retry; the jobs started before stay
    started, and the retry gets the same JobIds back for them."""
    method = {"StartLabelDetection": "start_label_detection", "StartContentModeration": "start_content_moderation",
              "StartTextDetection": "start_text_detection"}
    return {api: getattr(rekognition, method[api])(**request)["JobId"] for api, request in requests.items()}


# AWS's guide shows a notice's API as the Start* name, its API reference as the job
# type ("LABEL_DETECTION"): both are read.
NOTICE_APIS = {"LABEL_DETECTION": "StartLabelDetection", "CONTENT_MODERATION": "StartContentModeration",
               "TEXT_DETECTION": "StartTextDetection"}


@dataclass(frozen=True)
class JobNotice:
    job_id: str
    status: str  # SUCCEEDED, FAILED, ERROR
    api: str  # the Start* name
    tag: str
    bucket: str
    key: str


def parse_notice(body: str) -> JobNotice:
    """A completion notice from an SQS message body: SNS's envelope (``Message`` holds
    the notice as a string) or the raw notice."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification" and "Message" in message:
            message = json.loads(message["Message"])
        video = message.get("Video") or {}
        api = str(message["API"])
        return JobNotice(job_id=str(message["JobId"]), status=str(message["Status"]), api=NOTICE_APIS.get(api, api),
                         tag=str(message.get("JobTag") or ""), bucket=str(video.get("S3Bucket") or ""),
                         key=str(video.get("S3ObjectName") or ""))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise NotAJobNotice(f"not a Rekognition job notice: {exc!r}") from None


def pages(rekognition: Any, api: str, job_id: str, **extra: Any) -> Iterator[dict[str, Any]]:
    """Every page of a job's results (MaxResults 1,000, following NextToken)."""
    call = getattr(rekognition, GET_CALLS[api])
    request = {"JobId": job_id, "MaxResults": PAGE_SIZE, **extra}
    while True:
        page = call(**request)
        yield page
        token = page.get("NextToken")
        if not token:
            return
        request = {**request, "NextToken": token}


ITEMS = {"StartLabelDetection": "Labels", "StartContentModeration": "ModerationLabels",
         "StartTextDetection": "TextDetections"}


def collect(rekognition: Any, api: str, job_id: str, **extra: Any) -> dict[str, Any]:
    """One job's whole result as a single response of its Get* shape: the first page's
    metadata with every page's items, and no NextToken."""
    merged: dict[str, Any] | None = None
    items_key = ITEMS[api]
    for page in pages(rekognition, api, job_id, **extra):
        if merged is None:
            merged = {k: v for k, v in page.items() if k not in ("NextToken", "ResponseMetadata")}
            merged[items_key] = list(page.get(items_key, []))
        else:
            merged[items_key] += page.get(items_key, [])
    assert merged is not None  # pages() yields at least once
    return merged


def collect_timeline(rekognition: Any, jobs: dict[str, str]) -> dict[str, Any]:
    """The timeline (the local worker's shape, timeline.py) from the jobs' results: labels
    by segments and by timestamps, moderation, text, and the moments seen."""
    timeline: dict[str, Any] = {}
    if job := jobs.get("StartLabelDetection"):
        timeline["labels"] = collect(rekognition, "StartLabelDetection", job_id=job, AggregateBy="SEGMENTS")
        timeline["label_timestamps"] = collect(rekognition, "StartLabelDetection", job_id=job, AggregateBy="TIMESTAMPS")
    if job := jobs.get("StartContentModeration"):
        timeline["moderation"] = collect(rekognition, "StartContentModeration", job_id=job, AggregateBy="SEGMENTS")
    if job := jobs.get("StartTextDetection"):
        timeline["text"] = collect(rekognition, "StartTextDetection", job_id=job)
    moments = {e["Timestamp"] for e in timeline.get("label_timestamps", {}).get("Labels", [])}
    moments |= {e["Timestamp"] for e in timeline.get("text", {}).get("TextDetections", [])}
    timeline["frames"] = sorted(moments)
    timeline["moderation_stills"] = []
    return timeline


def failure_reason(rekognition: Any, api: str, job_id: str) -> str:
    """Why a job failed: its ``StatusMessage`` (the notice carries only the status)."""
    page = getattr(rekognition, GET_CALLS[api])(JobId=job_id, MaxResults=1)
    return str(page.get("StatusMessage") or page.get("JobStatus") or "FAILED")


def _box(raw: dict[str, Any] | None) -> Box:
    raw = raw or {}
    return Box(left=float(raw.get("Left", 0)), top=float(raw.get("Top", 0)), width=float(raw.get("Width", 0)),
               height=float(raw.get("Height", 0)))


def frames_of(timeline: dict[str, Any]) -> list[FrameAnalysis]:
    """The timeline read back as what was seen at each moment, for summary_record."""
    at: dict[int, dict[str, list]] = {}

    def moment(ms: int) -> dict[str, list]:
        return at.setdefault(int(ms), {"labels": [], "moderation": [], "text": []})
    for entry in timeline.get("label_timestamps", timeline.get("labels", {})).get("Labels", []):
        label = entry["Label"]
        moment(entry["Timestamp"])["labels"].append(Label(
            name=label["Name"], confidence=float(label["Confidence"]),
            parents=tuple(p["Name"] for p in label.get("Parents", [])),
            categories=tuple(c["Name"] for c in label.get("Categories", [])),
            aliases=tuple(a["Name"] for a in label.get("Aliases", [])),
            instances=tuple(Instance(box=_box(i.get("BoundingBox")), confidence=float(i.get("Confidence", 0)))
                            for i in label.get("Instances", []) if i.get("BoundingBox"))))
    for entry in timeline.get("moderation", {}).get("ModerationLabels", []):
        label = entry["ModerationLabel"]
        moment(entry.get("Timestamp", entry.get("StartTimestampMillis", 0)))["moderation"].append(ModerationLabel(
            name=label["Name"], confidence=float(label["Confidence"]), parent=label.get("ParentName", ""),
            level=int(label.get("TaxonomyLevel") or (1 if not label.get("ParentName") else 2))))
    for entry in timeline.get("text", {}).get("TextDetections", []):
        text = entry["TextDetection"]
        moment(entry["Timestamp"])["text"].append(TextDetection(
            text=text["DetectedText"], type=text["Type"], confidence=float(text["Confidence"]),
            box=_box(text.get("Geometry", {}).get("BoundingBox"))))
    template = LabelRecord(bucket="", key="", status=STATUS_LABELED, engine="rekognition")
    return [FrameAnalysis(ms, replace(template, labels=tuple(seen["labels"]), moderation_labels=tuple(seen["moderation"]),
                                      text=tuple(seen["text"])))
            for ms, seen in sorted(at.items())]


def video_record(timeline: dict[str, Any], *, bucket: str, key: str, etag: str, size: int,
                 failures: dict[str, str]) -> LabelRecord:
    """The summary record of a video analysed by Rekognition Video: LABELED with every
    label at its highest confidence, or FAILED with the jobs' reasons when none succeeded."""
    stamp = now_iso()
    versions = {name: timeline[part].get(field, "") for name, part, field in (
        ("labels", "labels", "LabelModelVersion"), ("moderation", "moderation", "ModerationModelVersion"),
        ("text", "text", "TextModelVersion")) if part in timeline}
    template = LabelRecord(bucket=bucket, key=key, etag=etag, size=size, status=STATUS_LABELED, engine="rekognition",
                           analyzed_at=stamp, updated_at=stamp, model_versions=versions)
    if failures and not any(part in timeline for part in ("labels", "moderation", "text")):
        reasons = "; ".join(f"{api}: {reason}" for api, reason in sorted(failures.items()))
        return replace(template, status=STATUS_FAILED, error=AnalysisError(code="VideoJobFailed", message=reasons[:500]))
    return summary_record(frames_of(timeline), template)
