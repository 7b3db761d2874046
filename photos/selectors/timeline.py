"""A video's timeline as its pages show it: when each label, word and moderation label is
seen, and where each label's boxes are at each moment of the playing video.

The timeline is the stored object beside the video (photos/renditions.py): Rekognition
Video's own responses (GetLabelDetection by SEGMENTS and by TIMESTAMPS,
GetContentModeration, GetTextDetection) and the sampled frames' times. Its names are the
machine's; an editor's rename or merge (on the record as audit entries) carries a
label's times and boxes to its new name."""

from __future__ import annotations

from bisect import bisect_right

from ..models import AuditEvent, Photo

# Boxes handed to the player: a video of the default cap (120 frames) with a dozen boxed
# labels a frame stays well under this; past it the earliest moments keep theirs.
MAX_PLAYER_BOXES = 3000


def renamed(photo: Photo) -> dict[str, str]:
    """Machine name -> the name it goes by now, replaying the editors' renames and merges
    in order: Cow -> Horse -> Pony gives Cow -> Pony; Cat -> Kitten then Kitten -> Cat
    gives Cat back its own name; Dog -> Pet then Cat -> Dog moves Cat alone. One query."""
    current: dict[str, str] = {}
    for name, after in AuditEvent.objects.filter(
            photo=photo, action__in=(AuditEvent.Action.RENAME, AuditEvent.Action.MERGE)).order_by("at", "id").values_list(
            "label_name", "after"):
        into = (after or {}).get("merged_into")
        if not name or not into or into == name:
            continue
        for machine, now in current.items():
            if now == name:  # every machine name that went by this name follows it
                current[machine] = into
        current.setdefault(name, into)
    return {machine: now for machine, now in current.items() if machine != now}


def label_segments(timeline: dict | None, names: dict[str, str] | None = None) -> dict[str, list[tuple[int, int]]]:
    """Label name (as it is named now) -> its (start, end) runs in ms, from
    GetLabelDetection's segments; a merge's runs join its target's."""
    runs: dict[str, set[tuple[int, int]]] = {}
    names = names or {}
    for entry in (timeline or {}).get("labels", {}).get("Labels", []):
        if "StartTimestampMillis" in entry:
            name = entry["Label"]["Name"]
            runs.setdefault(names.get(name, name), set()).add((entry["StartTimestampMillis"], entry["EndTimestampMillis"]))
    return {name: _joined(sorted(spans)) for name, spans in runs.items()}


def _joined(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted runs with overlapping or touching ones joined (two merged labels seen at once)."""
    out: list[list[int]] = []
    for start, end in spans:
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(start, end) for start, end in out]


def _frames(timeline: dict) -> list[int]:
    return sorted(int(t) for t in timeline.get("frames", []))


def _duration(timeline: dict) -> int:
    return int(timeline.get("labels", {}).get("VideoMetadata", {}).get("DurationMillis") or 0)


def _until(frames: list[int], ms: int, duration_ms: int) -> int:
    """A sampled frame's findings hold until the next sampled frame (or the video's end)."""
    later = bisect_right(frames, ms)
    end = frames[later] if later < len(frames) else duration_ms
    return max(ms + 1, end)


def text_times(timeline: dict | None) -> list[dict]:
    """Each distinct line of text found (as first written), with its (start, end) runs
    over the sampled frames, in order of first sight."""
    timeline = timeline or {}
    frames, duration_ms = _frames(timeline), _duration(timeline)
    seen: dict[str, dict] = {}
    for entry in timeline.get("text", {}).get("TextDetections", []):
        detection = entry["TextDetection"]
        if detection.get("Type") != "LINE":
            continue
        found = seen.setdefault(detection["DetectedText"].casefold(), {
            "text": detection["DetectedText"], "confidence": 0.0, "times": set()})
        found["confidence"] = max(found["confidence"], float(detection.get("Confidence") or 0))
        found["times"].add(int(entry["Timestamp"]))
    lines = []
    for found in seen.values():
        spans = _joined(sorted((t, _until(frames, t, duration_ms)) for t in found["times"]))
        lines.append({"text": found["text"], "confidence": found["confidence"], "spans": spans})
    return sorted(lines, key=lambda line: line["spans"][0])


def player_boxes(timeline: dict | None, shown: set[str], names: dict[str, str] | None = None) -> list[dict]:
    """The boxes to draw over the playing video: for each sampled frame, each instance of
    a label shown on the page, as {"t", "until" (ms), "label", "box" (ratios)}; from
    GetLabelDetection by TIMESTAMPS (a video analysed before those were kept has none)."""
    timeline = timeline or {}
    frames, duration_ms = _frames(timeline), _duration(timeline)
    names = names or {}
    boxes = []
    for entry in timeline.get("label_timestamps", {}).get("Labels", []):
        label = entry["Label"]
        name = names.get(label["Name"], label["Name"])
        if name not in shown:
            continue
        t = int(entry["Timestamp"])
        for instance in label.get("Instances", []):
            box = instance.get("BoundingBox") or {}
            if {"Left", "Top", "Width", "Height"} <= box.keys():
                boxes.append({"t": t, "until": _until(frames, t, duration_ms), "label": name,
                              "box": {k.lower(): round(float(box[k]), 4) for k in ("Left", "Top", "Width", "Height")}})
    boxes.sort(key=lambda b: (b["t"], b["label"]))
    return boxes[:MAX_PLAYER_BOXES]


def moderation_segments(timeline: dict | None) -> list[dict]:
    """GetContentModeration's segments, strongest first: name, parent, confidence, start,
    end (ms), and ``still``: the index of the still frame the worker kept of it, if any."""
    timeline = timeline or {}
    stills = {int(ms): n for n, ms in enumerate(timeline.get("moderation_stills", []))}
    found = [
        {"name": e["ModerationLabel"]["Name"], "parent": e["ModerationLabel"].get("ParentName", ""),
         "confidence": e["ModerationLabel"]["Confidence"], "start": e.get("StartTimestampMillis", e["Timestamp"]),
         "end": e.get("EndTimestampMillis", e["Timestamp"])}
        for e in timeline.get("moderation", {}).get("ModerationLabels", [])
    ]
    for segment in found:
        segment["still"] = stills.get(int(segment["start"]))
    return sorted(found, key=lambda m: (-m["confidence"], m["start"]))
