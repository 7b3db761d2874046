"""LabelRecord: the one record format shared by the Lambda, the local worker and Django.

It lives with the Lambda code because the Lambda asset may hold nothing but this
package and the runtime's boto3; Django imports it from here. Standard library only.

One record per image: ``pk = "IMG#<key>"``, ``sk = "ANALYSIS"``; the sync index is
``gsi1pk = "SYNC#<shard>"`` sorted by ``updated_at``. Confidence is 0-100 as in
Rekognition. The raw machine output is kept; thresholds are applied when displaying
and flagging, never when storing, so that they can change.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

SCHEMA_VERSION = 1
SORT_KEY = "ANALYSIS"
# The sync index: partition gsi1pk = "SYNC#<shard>", sort key updated_at.
SYNC_INDEX = "sync"
# Shards spread the sync index's writes over several partitions. Changing this
# number re-shards every record, so it is a constant of the schema, not a setting.
SYNC_SHARDS = 4

STATUS_LABELED = "LABELED"
STATUS_FAILED = "FAILED"
STATUS_SKIPPED = "SKIPPED"
STATUSES = (STATUS_LABELED, STATUS_FAILED, STATUS_SKIPPED)
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
ITEM_BUDGET_BYTES = 350_000


class RecordError(ValueError):
    """A DynamoDB item or dict is not a valid LabelRecord; the message names the field."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def shard_for(key: str) -> int:
    """Stable shard of an object key (the same in every process and language)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % SYNC_SHARDS


# Erasure: deleting a photo leaves this item beside (instead of) its ANALYSIS record, so
# no replayed event, retry or reconcile brings the photo back. It is on the sync index
# too, so photos deleted outside the app (S3 ObjectRemoved events) leave Django as well.
TOMBSTONE_SORT_KEY = "ERASED"


def tombstone_item(*, bucket: str, key: str, at: str, reason: str) -> dict[str, Any]:
    return {
        "pk": f"IMG#{key}", "sk": TOMBSTONE_SORT_KEY, "bucket": bucket, "key": key, "erased_at": at,
        "reason": reason[:200], "updated_at": at, "gsi1pk": f"SYNC#{shard_for(key)}",
    }


def is_tombstone(item: dict[str, Any]) -> bool:
    return item.get("sk") == TOMBSTONE_SORT_KEY


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

    @property
    def pk(self) -> str:
        return f"IMG#{self.key}"

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

    def to_item(self) -> dict[str, Any]:
        """A DynamoDB item (numbers as Decimal), capped to stay under 400 KB."""
        record = self.capped()
        item = _to_dynamo(record.to_dict())
        if item["error"] is None:
            del item["error"]
        item.update(
            pk=record.pk,
            sk=SORT_KEY,
            gsi1pk=f"SYNC#{shard_for(record.key)}",
        )
        # Word detections are the most numerous and least curated part: shed them
        # first if a pathological image still produces an oversized item.
        while _estimated_size(item) > ITEM_BUDGET_BYTES and item["text"]:
            item["text"] = item["text"][: len(item["text"]) // 2]
        while _estimated_size(item) > ITEM_BUDGET_BYTES and item["labels"]:
            item["labels"] = item["labels"][: len(item["labels"]) // 2]
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LabelRecord:
        """Parse and validate a DynamoDB item (or a dict from ``to_dict``).

        Raises RecordError naming the first bad field, e.g. ``labels[2].confidence``.
        """
        return _parse_record(item)


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError("<number>", f"not finite: {value!r}")
        # Rounded through str so 0.1 is stored as 0.1, not its binary expansion.
        return Decimal(str(round(value, 6)))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    raise RecordError("<value>", f"unsupported type {type(value).__name__}")


def _estimated_size(item: dict[str, Any]) -> int:
    return len(json.dumps(item, default=str, ensure_ascii=False).encode("utf-8"))


# --- parsing -----------------------------------------------------------------


def _get(data: Any, name: str, path: str, *, required: bool = True, default=None):
    if not isinstance(data, dict):
        raise RecordError(path or "<item>", f"expected a map, got {type(data).__name__}")
    if name not in data or data[name] is None:
        if required:
            raise RecordError(_join(path, name), "missing")
        return default
    return data[name]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _str(data, name, path, *, required=True, default="", choices=None) -> str:
    value = _get(data, name, path, required=required, default=default)
    if not isinstance(value, str):
        raise RecordError(_join(path, name), f"expected a string, got {value!r}")
    if choices is not None and value not in choices:
        raise RecordError(_join(path, name), f"expected one of {list(choices)}, got {value!r}")
    return value


def _num(data, name, path, *, required=True, default=None, lo=None, hi=None):
    value = _get(data, name, path, required=required, default=default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise RecordError(_join(path, name), f"expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise RecordError(_join(path, name), f"not finite: {value!r}")
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise RecordError(_join(path, name), f"expected {lo}..{hi}, got {number}")
    return number


def _list(data, name, path) -> list:
    value = _get(data, name, path, required=False, default=[])
    if not isinstance(value, (list, tuple)):
        raise RecordError(_join(path, name), f"expected a list, got {type(value).__name__}")
    return list(value)


def _strs(data, name, path) -> tuple[str, ...]:
    values = _list(data, name, path)
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise RecordError(f"{_join(path, name)}[{i}]", f"expected a string, got {v!r}")
    return tuple(values)


def _box(data, name, path) -> Box:
    p = _join(path, name)
    raw = _get(data, name, path)
    return Box(
        left=_num(raw, "left", p, lo=-1, hi=2),
        top=_num(raw, "top", p, lo=-1, hi=2),
        width=_num(raw, "width", p, lo=0, hi=2),
        height=_num(raw, "height", p, lo=0, hi=2),
    )


def _parse_record(item: Any) -> LabelRecord:
    if not isinstance(item, dict):
        raise RecordError("<item>", f"expected a map, got {type(item).__name__}")
    version = _num(item, "schema_version", "", lo=1)
    if int(version) != SCHEMA_VERSION:
        raise RecordError("schema_version", f"unsupported version {int(version)}")
    key = _str(item, "key", "")
    if not key:
        raise RecordError("key", "empty")
    if "pk" in item and item["pk"] != f"IMG#{key}":
        raise RecordError("pk", f"does not match key {key!r}")
    status = _str(item, "status", "", choices=STATUSES)

    error = None
    if item.get("error") is not None:
        error = AnalysisError(
            code=_str(item["error"], "code", "error"),
            message=_str(item["error"], "message", "error", required=False),
        )
    if status == STATUS_FAILED and error is None:
        raise RecordError("error", "missing on a FAILED record")

    labels = []
    for i, raw in enumerate(_list(item, "labels", "")):
        p = f"labels[{i}]"
        instances = tuple(
            Instance(
                box=_box(inst, "box", f"{p}.instances[{j}]"),
                confidence=_num(inst, "confidence", f"{p}.instances[{j}]", lo=0, hi=100),
            )
            for j, inst in enumerate(_list(raw, "instances", p))
        )
        labels.append(
            Label(
                name=_nonempty(raw, "name", p),
                confidence=_num(raw, "confidence", p, lo=0, hi=100),
                parents=_strs(raw, "parents", p),
                categories=_strs(raw, "categories", p),
                aliases=_strs(raw, "aliases", p),
                instances=instances,
            )
        )
    moderation = []
    for i, raw in enumerate(_list(item, "moderation_labels", "")):
        p = f"moderation_labels[{i}]"
        moderation.append(
            ModerationLabel(
                name=_nonempty(raw, "name", p),
                confidence=_num(raw, "confidence", p, lo=0, hi=100),
                parent=_str(raw, "parent", p, required=False),
                level=int(_num(raw, "level", p, required=False, default=1, lo=1, hi=3)),
            )
        )
    text = []
    for i, raw in enumerate(_list(item, "text", "")):
        p = f"text[{i}]"
        text.append(
            TextDetection(
                text=_nonempty(raw, "text", p),
                type=_str(raw, "type", p, choices=TEXT_TYPES),
                confidence=_num(raw, "confidence", p, lo=0, hi=100),
                box=_box(raw, "box", p),
            )
        )
    props_raw = _get(item, "properties", "", required=False, default={})
    colors = []
    for i, raw in enumerate(_list(props_raw, "dominant_colors", "properties")):
        p = f"properties.dominant_colors[{i}]"
        colors.append(
            Color(
                hex=_str(raw, "hex", p),
                red=int(_num(raw, "red", p, lo=0, hi=255)),
                green=int(_num(raw, "green", p, lo=0, hi=255)),
                blue=int(_num(raw, "blue", p, lo=0, hi=255)),
                percent=_num(raw, "percent", p, lo=0, hi=100),
                css=_str(raw, "css", p, required=False),
                simplified=_str(raw, "simplified", p, required=False),
            )
        )
    properties = Properties(
        brightness=_num(props_raw, "brightness", "properties", required=False, lo=0, hi=100),
        sharpness=_num(props_raw, "sharpness", "properties", required=False, lo=0, hi=100),
        contrast=_num(props_raw, "contrast", "properties", required=False, lo=0, hi=100),
        dominant_colors=tuple(colors),
    )
    versions = _get(item, "model_versions", "", required=False, default={})
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in versions.items()
    ):
        raise RecordError("model_versions", f"expected a map of strings, got {versions!r}")
    return LabelRecord(
        bucket=_str(item, "bucket", ""),
        key=key,
        etag=_str(item, "etag", "", required=False),
        size=int(_num(item, "size", "", required=False, default=0, lo=0)),
        status=status,
        error=error,
        labels=tuple(labels),
        moderation_labels=tuple(moderation),
        text=tuple(text),
        properties=properties,
        engine=_str(item, "engine", "", choices=ENGINES),
        model_versions=dict(versions),
        analyzed_at=_timestamp(item, "analyzed_at"),
        updated_at=_timestamp(item, "updated_at"),
        schema_version=SCHEMA_VERSION,
    )


def _nonempty(data, name, path) -> str:
    value = _str(data, name, path)
    if not value.strip():
        raise RecordError(_join(path, name), "empty")
    return value


_TIMESTAMP = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{6}Z")


def _timestamp(item, name) -> str:
    value = _str(item, name, "")
    # A regular expression, not strptime: it runs for every record the sync applies.
    if not _TIMESTAMP.fullmatch(value):
        raise RecordError(name, f"expected YYYY-MM-DDTHH:MM:SS.ffffffZ, got {value!r}")
    return value
