"""Streamed exports of curated labels: CSV, and COCO JSON for training detectors.

Both read the selected photos in chunks (keyset pagination, one label query per chunk)
and yield text as they go, so a 100,000-photo export never sits in memory.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Iterable, Iterator

from .models import Label

CHUNK = 2000  # photos per chunk: one photo query and one label query each


def _labels_by_photo(photo_ids: list[int], approved_only: bool) -> dict[int, list[Label]]:
    labels = Label.objects.filter(photo_id__in=photo_ids).order_by("photo_id", "-confidence", "name")
    if approved_only:
        labels = labels.filter(review_state=Label.Review.APPROVED)
    grouped: dict[int, list[Label]] = {}
    for label in labels.only("photo_id", "name", "confidence", "review_state", "source", "parents", "instances"):
        grouped.setdefault(label.photo_id, []).append(label)
    return grouped


def _photos(queryset) -> Iterator[list[dict]]:
    last = 0
    base = queryset.order_by("pk").values("pk", "uid", "image", "original_filename", "width", "height")
    while True:
        chunk = list(base.filter(pk__gt=last)[:CHUNK])
        if not chunk:
            return
        yield chunk
        last = chunk[-1]["pk"]


CSV_HEADER = ["photo_id", "key", "filename", "width", "height", "label", "confidence", "review_state", "source", "parents", "boxes"]


def labels_csv(queryset, *, approved_only: bool) -> Iterable[str]:
    """One row per label: the photo, the label, its state and its boxes (JSON)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue()
    for chunk in _photos(queryset):
        labels = _labels_by_photo([p["pk"] for p in chunk], approved_only)
        buffer.seek(0)
        buffer.truncate()
        for photo in chunk:
            for label in labels.get(photo["pk"], []):
                writer.writerow([
                    photo["uid"], photo["image"], _safe(photo["original_filename"]), photo["width"] or "", photo["height"] or "",
                    _safe(label.name), "" if label.confidence is None else f"{label.confidence:.2f}", label.review_state,
                    label.source, "|".join(label.parents or []),
                    json.dumps([i["box"] for i in label.instances or [] if "box" in i], separators=(",", ":")),
                ])
        yield buffer.getvalue()


def _safe(value: str) -> str:
    # Spreadsheets execute cells starting with these: keep user text inert.
    return "'" + value if value and value[0] in "=+-@\t\r" else value


def labels_coco(queryset, *, approved_only: bool) -> Iterable[str]:
    """COCO detection JSON: images, annotations (one per box, in pixels) and categories;
    labels without boxes are listed on their image under ``labels`` (an extension).

    Two passes over the photos (images, then annotations) keep memory flat: only the
    category table is held."""
    categories: dict[str, int] = {}
    supercategory: dict[str, str] = {}

    def category(label: Label) -> int:
        supercategory.setdefault(label.name, (label.parents or [""])[0])
        return categories.setdefault(label.name, len(categories) + 1)

    yield '{"info":{"description":"mediaapp curated labels","version":"1"},"images":['
    first = True
    for chunk in _photos(queryset):
        labels = _labels_by_photo([p["pk"] for p in chunk], approved_only)
        parts = []
        for photo in chunk:
            image_labels = [
                {"name": lb.name, "category_id": category(lb), "review_state": lb.review_state}
                for lb in labels.get(photo["pk"], [])
                if not any("box" in i for i in lb.instances or [])
            ]
            for lb in labels.get(photo["pk"], []):
                category(lb)
            parts.append(json.dumps({
                "id": photo["pk"], "file_name": photo["image"], "width": photo["width"] or 0,
                "height": photo["height"] or 0, "uid": str(photo["uid"]), "labels": image_labels,
            }, separators=(",", ":")))
        if parts:
            yield ("" if first else ",") + ",".join(parts)
            first = False
    yield '],"annotations":['
    annotation_id = 0
    for chunk in _photos(queryset):
        labels = _labels_by_photo([p["pk"] for p in chunk], approved_only)
        parts = []
        for photo in chunk:
            width, height = photo["width"] or 0, photo["height"] or 0
            for label in labels.get(photo["pk"], []):
                for instance in (i for i in label.instances or [] if "box" in i):
                    box = instance["box"]
                    x, y, w, h = box["left"] * width, box["top"] * height, box["width"] * width, box["height"] * height
                    annotation_id += 1
                    parts.append(json.dumps({
                        "id": annotation_id, "image_id": photo["pk"], "category_id": category(label),
                        "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)], "area": round(w * h, 2),
                        "iscrowd": 0,
                        "score": None if instance.get("confidence") is None else round(instance["confidence"] / 100, 4),
                        "attributes": {"review_state": label.review_state, "source": label.source},
                    }, separators=(",", ":")))
        if parts:
            yield ("," if annotation_id > len(parts) else "") + ",".join(parts)
    yield '],"categories":' + json.dumps(
        [{"id": cid, "name": name, "supercategory": supercategory.get(name, "")} for name, cid in categories.items()],
        separators=(",", ":"),
    ) + "}"
