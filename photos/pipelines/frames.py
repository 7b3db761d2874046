"""A video analysed frame by frame with the image analysis core: what the local worker
does for every video, and what the offline AWS runner's Rekognition Video does
(infra/local_video.py), so both paths give the same timeline for the same file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any

import cv2

from infra.functions.labeler import AnalyzeOptions, ImageRef, analyze
from infra.functions.labeler.record import STATUS_LABELED
from infra.functions.labeler.timeline import (
    FrameAnalysis, VideoFacts, get_content_moderation, get_label_detection, get_text_detection,
)

from .. import video
from ..renditions import flagged_moments, still_jpeg

@dataclass
class VideoAnalysis:
    frames: list[FrameAnalysis]
    facts: VideoFacts
    interval_ms: int
    flagged: dict[int, bytes] = field(default_factory=dict)  # where a moderation label starts: a small still
    model_versions: dict[str, str] = field(default_factory=dict)


def analyse_video(handle: IO[bytes], *, client: Any, bucket: str, key: str, interval_ms: int,
                  max_frames: int) -> VideoAnalysis:
    """Sample the video's frames (photos/video.py) and analyse each as a photo is;
    video.VideoError if it cannot be read."""
    probed = video.probe_stored(handle)
    frames: list[FrameAnalysis] = []
    flagged: dict[int, bytes] = {}
    versions: dict[str, str] = {}
    previous_flags: set[str] = set()
    for ms, rgb in video.sample_frames(handle, probed, interval_ms=interval_ms, max_frames=max_frames):
        _, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        record = analyze(ImageRef(bucket=bucket, key=f"{key}#t={ms}", data=jpeg.tobytes()), client,
                         options=AnalyzeOptions())
        if record.status != STATUS_LABELED:
            continue
        frames.append(FrameAnalysis(timestamp_ms=ms, record=record))
        versions = dict(record.model_versions)
        flags = {m.name for m in record.moderation_labels}
        if flags - previous_flags:  # a flagged moment starts: a small still for its moderators
            flagged[ms] = still_jpeg(rgb)
        previous_flags = flags
    facts = VideoFacts(codec=probed.codec, format=probed.container, duration_ms=probed.duration_ms,
                       frame_rate=probed.frame_rate, width=probed.width, height=probed.height)
    interval = video.sample_interval(probed, interval_ms=interval_ms, max_frames=max_frames)
    return VideoAnalysis(frames=frames, facts=facts, interval_ms=interval, flagged=flagged, model_versions=versions)


def timeline_of(analysis: VideoAnalysis, *, max_stills: int = 0) -> dict[str, Any]:
    """The timeline: Rekognition Video's responses (labels by segments and by timestamps,
    moderation, text), the sampled moments, and which flagged moments have a still."""
    frames, facts, interval, versions = analysis.frames, analysis.facts, analysis.interval_ms, analysis.model_versions
    moderation = get_content_moderation(frames, facts, interval_ms=interval, model_version=versions.get("moderation", ""))
    # The strongest flagged moments' stills, by the start of each segment (a sighting).
    stills = [ms for ms in flagged_moments({"moderation": moderation}) if ms in analysis.flagged]
    return {
        "labels": get_label_detection(frames, facts, interval_ms=interval, model_version=versions.get("labels", "")),
        # Each frame's labels with their boxes: what the player draws at each moment.
        "label_timestamps": get_label_detection(frames, facts, interval_ms=interval, aggregate_by="TIMESTAMPS",
                                                model_version=versions.get("labels", "")),
        "moderation": moderation,
        "text": get_text_detection(frames, facts, model_version=versions.get("text", "")),
        "frames": [f.timestamp_ms for f in frames],
        "moderation_stills": stills[:max_stills],
    }
