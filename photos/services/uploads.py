"""Receiving uploaded files: validate each, refuse duplicates, store the rest. Shared by
the "My photos" form and the JSON API so both behave the same; and the browser-to-S3
direct upload, checked on confirmation exactly as a form upload is."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction

from ..models import CONTENT_TYPES, Photo, photo_upload_to
from ..pipelines import media_storage
from ..validation import UploadRejected, check_upload, clean_filename
from .photos import photo_create, photo_enqueue_analysis, photos_already_uploaded


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
    known = photos_already_uploaded(owner=owner, sha256s=[c.sha256 for c in checked_files])
    for checked in checked_files:
        if checked.sha256 in known:
            outcome.rejected.append((checked.original_filename, f"is already in your photos (as {known[checked.sha256]})."))
            continue
        known[checked.sha256] = checked.original_filename
        try:
            with transaction.atomic():
                outcome.accepted.append(photo_create(owner=owner, upload=checked, visibility=visibility))
        except IntegrityError:
            # Another request stored the same file for this owner a moment ago (the
            # unique constraint decided the race); photo_create removed our copy.
            if not Photo.objects.filter(owner=owner, sha256=checked.sha256).exists():
                raise
            outcome.rejected.append((checked.original_filename, "is already in your photos."))
    return outcome


# --- direct browser-to-S3 uploads -----------------------------------------------------

DIRECT_UPLOAD_SECONDS = 600
DIRECT_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


class DirectUploadError(ValueError):
    """The direct upload cannot go ahead or be confirmed; the message is for the user."""


def direct_upload_start(*, owner, filename: str, content_type: str, size: int) -> dict:
    """A presigned POST letting the browser put one file straight into the bucket, with
    the size and content type enforced by S3 itself, and a signed token to confirm it."""
    if content_type not in DIRECT_TYPES:
        raise DirectUploadError("Upload JPEG, PNG or WebP photos.")
    limit = settings.PHOTOS_MAX_UPLOAD_BYTES
    if not 0 < size <= limit:
        raise DirectUploadError(f"Photos must be between 1 byte and {limit} bytes.")
    key = photo_upload_to(Photo(), f"upload.{DIRECT_TYPES[content_type]}")
    post = media_storage().presigned_post(key=key, content_type=content_type, max_bytes=limit,
                                          expires_in=DIRECT_UPLOAD_SECONDS)
    token = signing.dumps({"key": key, "user": owner.pk, "filename": clean_filename(filename)}, salt="direct-upload")
    return {"url": post["url"], "fields": post["fields"], "token": token}


def direct_upload_confirm(*, owner, token: str, visibility: str = Photo.Visibility.PRIVATE) -> Photo:
    """Check the object the browser uploaded exactly as a form upload is checked, then
    create its Photo (or claim the one a sync made first). A rejected file is deleted."""
    try:
        data = signing.loads(token, salt="direct-upload", max_age=DIRECT_UPLOAD_SECONDS * 2)
    except signing.BadSignature:
        raise DirectUploadError("This upload link is invalid or has expired.") from None
    if data.get("user") != owner.pk:
        raise DirectUploadError("This upload belongs to someone else.")
    key = data["key"]
    try:
        with default_storage.open(key, "rb") as handle:
            content = handle.read(settings.PHOTOS_MAX_UPLOAD_BYTES + 1)
    except (FileNotFoundError, OSError):
        raise DirectUploadError("The file never reached storage; try the upload again.") from None
    upload = SimpleUploadedFile(data["filename"], content)
    try:
        checked = check_upload(upload)
        if checked.sha256 in photos_already_uploaded(owner=owner, sha256s=[checked.sha256]):
            raise UploadRejected(checked.original_filename, "is already in your photos.")
    except UploadRejected as exc:
        default_storage.delete(key)
        raise DirectUploadError(f"{exc.filename} {exc.message}") from None
    try:
        with transaction.atomic():
            photo = Photo.objects.select_for_update().filter(image=key).first()
            if photo is None:
                photo = Photo(image=key)
            elif photo.owner_id not in (None, owner.pk):
                raise DirectUploadError("This upload belongs to someone else.")
            photo.owner = owner
            photo.original_filename = checked.original_filename
            photo.content_type = CONTENT_TYPES[checked.format]
            photo.size, photo.width, photo.height, photo.sha256 = checked.size, checked.width, checked.height, checked.sha256
            photo.visibility = visibility
            photo.save()
            transaction.on_commit(lambda: photo_enqueue_analysis(photo_id=photo.id))
    except IntegrityError:
        # The same file confirmed twice at once: the unique constraint kept one.
        default_storage.delete(key)
        raise DirectUploadError(f"{checked.original_filename} is already in your photos.") from None
    return photo
