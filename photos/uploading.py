"""Receiving uploaded files: validate each, refuse duplicates, store the rest. Shared by
the "My photos" form and the JSON API so both behave the same."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from . import services
from .forms import UploadRejected, check_upload
from .models import Photo


@dataclass
class UploadOutcome:
    accepted: list[Photo] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (filename, message)


def photos_receive(*, owner, files, visibility: str) -> UploadOutcome:
    """Validate every file (a bad one never costs the good ones), report duplicates of
    the owner's photos (also within this batch) instead of storing them, and store each
    accepted file in its own transaction with its analysis enqueued on commit."""
    outcome = UploadOutcome()
    checked_files = []
    for upload in files:
        try:
            checked_files.append(check_upload(upload))
        except UploadRejected as exc:
            outcome.rejected.append((exc.filename, exc.message))
    known = services.photos_already_uploaded(owner=owner, sha256s=[c.sha256 for c in checked_files])
    for checked in checked_files:
        if checked.sha256 in known:
            outcome.rejected.append((checked.original_filename, f"is already in your photos (as {known[checked.sha256]})."))
            continue
        known[checked.sha256] = checked.original_filename
        try:
            with transaction.atomic():
                outcome.accepted.append(services.photo_create(owner=owner, upload=checked, visibility=visibility))
        except IntegrityError:
            # Another request stored the same file for this owner a moment ago (the
            # unique constraint decided the race); photo_create removed our copy.
            if not Photo.objects.filter(owner=owner, sha256=checked.sha256).exists():
                raise
            outcome.rejected.append((checked.original_filename, "is already in your photos."))
    return outcome
