"""Photos with an analysis applied, for tests of what users and editors see."""

from __future__ import annotations

from infra.functions.labeler.record import Label as RecordLabel, LabelRecord
from photos.models import Photo
from photos.apply import apply_records

STAMP = "2026-11-22T08:00:00.000000Z"


def analysed_photo(name: str, labels: dict[str, tuple[float, list[str]]], *, visibility: str = "public", **fields) -> Photo:
    """A photo ``uploads/<name>`` whose analysis found ``labels`` ({name: (confidence, parents)})."""
    key = f"uploads/{name}"
    Photo.objects.create(image=key, original_filename=name, visibility=visibility, **fields)
    apply_records([LabelRecord(bucket="b", key=key, status="LABELED", engine="local", analyzed_at=STAMP, updated_at=STAMP,
                               labels=tuple(RecordLabel(name=n, confidence=c, parents=tuple(p)) for n, (c, p) in labels.items()))])
    return Photo.objects.get(image=key)
