"""Parsing and validating a LabelRecord from a plain dict or a DynamoDB item: every
field checked, the first bad one named (``labels[2].confidence``). Runs for every
record the sync applies, so it is hand-written rather than schema-driven."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from .record import (
    ENGINES,
    SCHEMA_VERSION,
    STATUS_FAILED,
    STATUSES,
    TEXT_TYPES,
    AnalysisError,
    Box,
    Color,
    Instance,
    Label,
    LabelRecord,
    ModerationLabel,
    Properties,
    RecordError,
    TextDetection,
)


def parse_record(item: Any) -> LabelRecord:
    """A validated LabelRecord of ``item`` (a ``to_dict`` dict or a DynamoDB item);
    raises RecordError naming the first bad field."""
    return _parse_record(item)


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
