"""A video's analysis as Rekognition Video returns it, made from per-frame image analyses.

The local worker samples frames and analyses each one with the image analysis core
(``analyze``: DetectLabels, DetectModerationLabels, DetectText); this module turns those
records into the responses of ``GetLabelDetection``, ``GetContentModeration`` and
``GetTextDetection`` (``Timestamp`` in milliseconds, ``StartTimestampMillis`` /
``EndTimestampMillis`` / ``DurationMillis`` per segment, ``VideoMetadata``), the shapes
the AWS path's collector stores (issue 22), and into one summary ``LabelRecord`` for the
video (each label at its highest confidence, the strongest moderation label, the text
found), which the Django sync applies as it applies a photo's.

Pure Python: no decoder here, so the Lambda can import it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .record import Label, LabelRecord, ModerationLabel, TextDetection

# Two sightings of a label at most this many sample intervals apart are one segment.
SEGMENT_GAP_INTERVALS = 1.5


@dataclass(frozen=True)
class FrameAnalysis:
    timestamp_ms: int
    record: LabelRecord  # the image analysis of that frame


@dataclass(frozen=True)
class VideoFacts:
    codec: str  # FFmpeg's name ("h264")
    format: str  # "MP4", "MOV", "WEBM"
    duration_ms: int
    frame_rate: float
    width: int
    height: int


FORMAT_NAMES = {"MP4": "QuickTime / MOV", "MOV": "QuickTime / MOV", "WEBM": "Matroska / WebM"}


def video_metadata(facts: VideoFacts) -> dict[str, Any]:
    """``VideoMetadata`` as Rekognition reports it (it names MP4 and MOV "QuickTime / MOV")."""
    return {"Codec": facts.codec, "DurationMillis": facts.duration_ms, "Format": FORMAT_NAMES.get(facts.format, facts.format),
            "FrameRate": float(facts.frame_rate), "FrameHeight": facts.height, "FrameWidth": facts.width}


def _box(box) -> dict[str, float]:
    return {"Width": box.width, "Height": box.height, "Left": box.left, "Top": box.top}


def _label(label: Label) -> dict[str, Any]:
    return {
        "Name": label.name,
        "Confidence": label.confidence,
        "Instances": [{"BoundingBox": _box(i.box), "Confidence": i.confidence} for i in label.instances],
        "Parents": [{"Name": p} for p in label.parents],
        "Aliases": [{"Name": a} for a in label.aliases],
        "Categories": [{"Name": c} for c in label.categories],
    }


def segments(times: list[int], *, interval_ms: int, duration_ms: int) -> list[tuple[int, int]]:
    """Sightings (ms, sorted) -> (start, end) runs: sightings closer than
    SEGMENT_GAP_INTERVALS sample intervals are one run; each run lasts until the next
    sample would have been taken (at most the video's end)."""
    runs: list[list[int]] = []
    for t in times:
        if runs and t - runs[-1][1] <= interval_ms * SEGMENT_GAP_INTERVALS:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    # A sighting at (or past) the end still lasts a millisecond: no empty segment.
    return [(start, max(start + 1, min(duration_ms, end + interval_ms))) for start, end in runs]


def get_label_detection(frames: list[FrameAnalysis], facts: VideoFacts, *, interval_ms: int,
                        aggregate_by: str = "SEGMENTS", model_version: str = "") -> dict[str, Any]:
    """``GetLabelDetection``'s response. ``TIMESTAMPS``: one entry per label per frame;
    ``SEGMENTS``: one per label per run of frames, at the run's highest confidence, with
    the instances of its best frame."""
    entries: list[dict[str, Any]] = []
    if aggregate_by == "TIMESTAMPS":
        for frame in frames:
            for label in frame.record.labels:
                entries.append({"Timestamp": frame.timestamp_ms, "Label": _label(label)})
    else:
        seen: dict[str, list[tuple[int, Label]]] = {}
        for frame in frames:
            for label in frame.record.labels:
                seen.setdefault(label.name, []).append((frame.timestamp_ms, label))
        for name, sightings in seen.items():
            times = [t for t, _ in sightings]
            for start, end in segments(times, interval_ms=interval_ms, duration_ms=facts.duration_ms):
                inside = [lb for t, lb in sightings if start <= t < end]  # start is a sighting: never empty
                best = max(inside, key=lambda lb: lb.confidence)
                entries.append({"Timestamp": start, "Label": _label(best), "StartTimestampMillis": start,
                                "EndTimestampMillis": end, "DurationMillis": end - start})
    entries.sort(key=lambda e: (e["Timestamp"], -e["Label"]["Confidence"], e["Label"]["Name"]))
    return {"JobStatus": "SUCCEEDED", "VideoMetadata": video_metadata(facts), "Labels": entries,
            "LabelModelVersion": model_version,
            "GetRequestMetadata": {"SortBy": "TIMESTAMP", "AggregateBy": aggregate_by}}


def get_content_moderation(frames: list[FrameAnalysis], facts: VideoFacts, *, interval_ms: int,
                           model_version: str = "") -> dict[str, Any]:
    """``GetContentModeration``'s response, one entry per label per run of frames."""
    seen: dict[str, list[tuple[int, ModerationLabel]]] = {}
    for frame in frames:
        for label in frame.record.moderation_labels:
            seen.setdefault(label.name, []).append((frame.timestamp_ms, label))
    entries = []
    for sightings in seen.values():
        for start, end in segments([t for t, _ in sightings], interval_ms=interval_ms, duration_ms=facts.duration_ms):
            best = max((lb for t, lb in sightings if start <= t < end), key=lambda lb: lb.confidence)
            entries.append({
                "Timestamp": start,
                "ModerationLabel": {"Confidence": best.confidence, "Name": best.name, "ParentName": best.parent,
                                    "TaxonomyLevel": best.level},
                "StartTimestampMillis": start, "EndTimestampMillis": end, "DurationMillis": end - start,
            })
    entries.sort(key=lambda e: (e["Timestamp"], -e["ModerationLabel"]["Confidence"]))
    return {"JobStatus": "SUCCEEDED", "VideoMetadata": video_metadata(facts), "ModerationLabels": entries,
            "ModerationModelVersion": model_version,
            "GetRequestMetadata": {"SortBy": "TIMESTAMP", "AggregateBy": "SEGMENTS"}}


def get_text_detection(frames: list[FrameAnalysis], facts: VideoFacts, *, model_version: str = "") -> dict[str, Any]:
    """``GetTextDetection``'s response: every line and word of every sampled frame."""
    entries = []
    for frame in frames:
        for n, text in enumerate(frame.record.text):
            entries.append({"Timestamp": frame.timestamp_ms, "TextDetection": {
                "DetectedText": text.text, "Type": text.type, "Id": n, "Confidence": text.confidence,
                "Geometry": {"BoundingBox": _box(text.box)}}})
    return {"JobStatus": "SUCCEEDED", "VideoMetadata": video_metadata(facts), "TextDetections": entries,
            "TextModelVersion": model_version}


def summary_record(frames: list[FrameAnalysis], template: LabelRecord) -> LabelRecord:
    """One record for the whole video: every label at its highest confidence in any
    frame, with that frame's instances; every moderation label at its highest; each
    distinct line of text (and its words) once, as first seen. ``template`` gives the
    bucket, key, etag, engine, versions and times."""
    labels: dict[str, Label] = {}
    moderation: dict[str, ModerationLabel] = {}
    lines: dict[str, TextDetection] = {}
    words: dict[str, TextDetection] = {}
    for frame in frames:
        for label in frame.record.labels:
            if label.name not in labels or label.confidence > labels[label.name].confidence:
                labels[label.name] = label
        for label in frame.record.moderation_labels:
            if label.name not in moderation or label.confidence > moderation[label.name].confidence:
                moderation[label.name] = label
        for text in frame.record.text:
            bucket = lines if text.type == "LINE" else words
            key = text.text.casefold()
            if key not in bucket or text.confidence > bucket[key].confidence:
                bucket[key] = text
    return replace(template, labels=tuple(labels.values()), moderation_labels=tuple(moderation.values()),
                   text=tuple(lines.values()) + tuple(words.values())).capped()
