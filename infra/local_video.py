"""Rekognition Video offline, for `make run-aws-local` and the AWS path's integration
tests: Start* / Get* with Rekognition Video's request and response shapes, answered
from the local worker's own frame-by-frame analysis (photos/pipelines/frames.py), so the
offline AWS path shows the same timeline as the local path for the same video.

- A Start* reads the S3 object it names (its version), idempotently by its
  ClientRequestToken; the video is analysed once for all of its jobs.
- Each job finishes in a worker thread (or at once, ``synchronous``), and its completion
  notice is published to the NotificationChannel's SNS topic, as Rekognition does.
- Get* pages its results (MaxResults, NextToken); GetLabelDetection aggregates by
  SEGMENTS or TIMESTAMPS.
- What it does not emulate: the concurrent-jobs quota (LimitExceeded: the unit tests'
  fake does), codecs it cannot read (the worker's decoder reads them all).

Image calls (DetectLabels...) go to the LocalRekognition it wraps.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from typing import Any

from botocore.exceptions import ClientError

ITEMS = {"StartLabelDetection": "Labels", "StartContentModeration": "ModerationLabels",
         "StartTextDetection": "TextDetections"}


class LocalRekognitionVideo:
    def __init__(self, image_client: Any, s3: Any, sns: Any, *, synchronous: bool = False):
        self.image_client, self.s3, self.sns, self.synchronous = image_client, s3, sns, synchronous
        self.jobs: dict[str, dict[str, Any]] = {}
        self.by_token: dict[str, str] = {}
        self.timelines: dict[tuple, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # DetectLabels & co.: the image detector's
        return getattr(self.image_client, name)

    # --- Start* -------------------------------------------------------------------------

    def start_label_detection(self, **request):
        return self._start("StartLabelDetection", **request)

    def start_content_moderation(self, **request):
        return self._start("StartContentModeration", **request)

    def start_text_detection(self, **request):
        return self._start("StartTextDetection", **request)

    def _start(self, api: str, *, Video, ClientRequestToken=None, JobTag="", NotificationChannel=None, **_):
        with self.lock:
            if ClientRequestToken and ClientRequestToken in self.by_token:
                return {"JobId": self.by_token[ClientRequestToken]}  # the same job: no second notice
            job_id = uuid.uuid4().hex
            if ClientRequestToken:
                self.by_token[ClientRequestToken] = job_id
            self.jobs[job_id] = {"api": api, "status": "IN_PROGRESS", "video": Video["S3Object"], "tag": JobTag,
                                 "channel": NotificationChannel or {}}
        if self.synchronous:
            self._run(job_id)
        else:
            threading.Thread(target=self._run, args=(job_id,), name=f"video-job-{job_id[:8]}", daemon=True).start()
        return {"JobId": job_id}

    def _run(self, job_id: str) -> None:
        job = self.jobs[job_id]
        obj = job["video"]
        try:
            job["timeline"] = self._timeline(obj["Bucket"], obj["Name"], obj.get("Version"))
            job["status"] = "SUCCEEDED"
        except Exception as exc:  # an unreadable video: the job fails, as Rekognition's does
            job["status"], job["message"] = "FAILED", f"Unsupported codec/format. ({exc})"[:500]
        if job["channel"].get("SNSTopicArn"):
            self.sns.publish(TopicArn=job["channel"]["SNSTopicArn"], Message=json.dumps({
                "JobId": job_id, "Status": job["status"], "API": job["api"], "JobTag": job["tag"],
                "Timestamp": 0, "Video": {"S3ObjectName": obj["Name"], "S3Bucket": obj["Bucket"]}}))

    def _timeline(self, bucket: str, key: str, version: str | None) -> dict[str, Any]:
        from django.conf import settings

        from photos.pipelines.frames import analyse_video, timeline_of

        cache_key = (bucket, key, version)
        with self.lock:
            if cache_key in self.timelines:
                return self.timelines[cache_key]
        args = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
        data = self.s3.get_object(**args)["Body"].read()
        analysis = analyse_video(io.BytesIO(data), client=self.image_client, bucket=bucket, key=key,
                                 interval_ms=settings.PHOTOS_VIDEO_SAMPLE_MS, max_frames=settings.PHOTOS_VIDEO_MAX_FRAMES)
        timeline = timeline_of(analysis)
        with self.lock:
            self.timelines[cache_key] = timeline
        return timeline

    # --- Get* ---------------------------------------------------------------------------

    def get_label_detection(self, *, JobId, MaxResults=1000, NextToken=None, AggregateBy="TIMESTAMPS", **_):
        part = "label_timestamps" if AggregateBy == "TIMESTAMPS" else "labels"
        return self._page(JobId, "StartLabelDetection", part, MaxResults, NextToken)

    def get_content_moderation(self, *, JobId, MaxResults=1000, NextToken=None, **_):
        return self._page(JobId, "StartContentModeration", "moderation", MaxResults, NextToken)

    def get_text_detection(self, *, JobId, MaxResults=1000, NextToken=None, **_):
        return self._page(JobId, "StartTextDetection", "text", MaxResults, NextToken)

    def _page(self, job_id: str, api: str, part: str, size: int, token: str | None) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None or job["api"] != api:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no such job"}}, api)
        if job["status"] != "SUCCEEDED":
            return {"JobStatus": job["status"], **({"StatusMessage": job["message"]} if "message" in job else {})}
        response = job["timeline"][part]
        items = response[ITEMS[api]]
        start = int(token or 0)
        page = {**response, ITEMS[api]: items[start:start + size]}
        if start + size < len(items):
            page["NextToken"] = str(start + size)
        return page
