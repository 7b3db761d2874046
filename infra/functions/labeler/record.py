"""LabelRecord: the one record format shared by the Lambda, the local worker and Django.

It lives with the Lambda code because the Lambda asset may hold nothing but this
package and the runtime's boto3; Django imports it from here. Standard library only.

How it is kept in DynamoDB (keys, Decimal numbers) is table.py's; validating a dict
or item back into a record is parsing.py's. Confidence is 0-100 as in Rekognition. The raw machine output is kept; thresholds are applied when displaying
and flagging, never when storing, so that they can change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

SCHEMA_VERSION = 1
STATUS_LABELED = "LABELED"
STATUS_FAILED = "FAILED"
STATUS_SKIPPED = "SKIPPED"
STATUSES = (STATUS_LABELED, STATUS_FAILED, STATUS_SKIPPED)
# A SKIPPED record's code while a video Rekognition cannot read waits for its H.264 stream
# (labeler/video.py note_waiting); the sync asks the app's worker for that stream.
WAITING_FOR_STREAM = "WaitingForStream"
ENGINES = ("rekognition", "local")
TEXT_TYPES = ("LINE", "WORD")

# DynamoDB refuses items over 400 KB. Rekognition returns at most 1,000 labels and
# 100 words; these caps keep a worst case far below the limit while keeping every
# label a person would curate (they are sorted by confidence before capping).
MAX_LABELS = 100
MAX_INSTANCES = 25
MAX_MODERATION_LABELS = 50
MAX_TEXT = 150
MAX_COLORS = 10
MAX_TEXT_CHARS = 500


class RecordError(ValueError):
    """A DynamoDB item or dict is not a valid LabelRecord; the message names the field."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def now_iso() -> str:
    """UTC timestamp with fixed-width microseconds, so strings sort like times."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class Instance:
    box: Box
    confidence: float


@dataclass(frozen=True)
class Label:
    name: str
    confidence: float
    parents: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    instances: tuple[Instance, ...] = ()


@dataclass(frozen=True)
class ModerationLabel:
    name: str
    confidence: float
    parent: str = ""
    level: int = 1


@dataclass(frozen=True)
class TextDetection:
    text: str
    type: str
    confidence: float
    box: Box


@dataclass(frozen=True)
class Color:
    hex: str
    red: int
    green: int
    blue: int
    percent: float
    css: str = ""
    simplified: str = ""


@dataclass(frozen=True)
class Properties:
    brightness: float | None = None
    sharpness: float | None = None
    contrast: float | None = None
    dominant_colors: tuple[Color, ...] = ()


@dataclass(frozen=True)
class AnalysisError:
    code: str
    message: str = ""


@dataclass(frozen=True)
class LabelRecord:
    bucket: str
    key: str
    status: str
    engine: str
    etag: str = ""
    size: int = 0
    error: AnalysisError | None = None
    labels: tuple[Label, ...] = ()
    moderation_labels: tuple[ModerationLabel, ...] = ()
    text: tuple[TextDetection, ...] = ()
    properties: Properties = field(default_factory=Properties)
    model_versions: dict[str, str] = field(default_factory=dict)
    analyzed_at: str = ""
    updated_at: str = ""
    schema_version: int = SCHEMA_VERSION

    def capped(self) -> LabelRecord:
        """The record with every list cut to its cap, highest confidence first."""
        labels = sorted(self.labels, key=lambda x: -x.confidence)[:MAX_LABELS]
        labels = [
            replace(
                lb,
                instances=tuple(
                    sorted(lb.instances, key=lambda i: -i.confidence)[:MAX_INSTANCES]
                ),
            )
            for lb in labels
        ]
        moderation = sorted(self.moderation_labels, key=lambda x: -x.confidence)
        text = [
            replace(t, text=t.text[:MAX_TEXT_CHARS]) for t in self.text[:MAX_TEXT]
        ]
        props = replace(
            self.properties,
            dominant_colors=tuple(self.properties.dominant_colors[:MAX_COLORS]),
        )
        return replace(
            self,
            labels=tuple(labels),
            moderation_labels=tuple(moderation[:MAX_MODERATION_LABELS]),
            text=tuple(text),
            properties=props,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict (floats), the same shape as the DynamoDB item.

        Built by hand rather than with dataclasses.asdict, which deep-copies every
        leaf and dominated the cost of applying records in bulk."""

        def box(b: Box) -> dict:
            return {"left": b.left, "top": b.top, "width": b.width, "height": b.height}

        props = self.properties
        return {
            "bucket": self.bucket, "key": self.key, "status": self.status, "engine": self.engine,
            "etag": self.etag, "size": self.size,
            "error": {"code": self.error.code, "message": self.error.message} if self.error else None,
            "labels": [
                {"name": lb.name, "confidence": lb.confidence, "parents": list(lb.parents),
                 "categories": list(lb.categories), "aliases": list(lb.aliases),
                 "instances": [{"box": box(i.box), "confidence": i.confidence} for i in lb.instances]}
                for lb in self.labels
            ],
            "moderation_labels": [
                {"name": m.name, "confidence": m.confidence, "parent": m.parent, "level": m.level}
                for m in self.moderation_labels
            ],
            "text": [{"text": t.text, "type": t.type, "confidence": t.confidence, "box": box(t.box)} for t in self.text],
            "properties": {
                "brightness": props.brightness, "sharpness": props.sharpness, "contrast": props.contrast,
                "dominant_colors": [
                    {"hex": c.hex, "red": c.red, "green": c.green, "blue": c.blue, "percent": c.percent,
                     "css": c.css, "simplified": c.simplified}
                    for c in props.dominant_colors
                ],
            },
            "model_versions": dict(self.model_versions),
            "analyzed_at": self.analyzed_at, "updated_at": self.updated_at, "schema_version": self.schema_version,
        }
