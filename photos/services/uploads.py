"""Receiving uploaded files: validate each, refuse duplicates, store the rest. Shared by
the "My photos" form and the JSON API so both behave the same; and the browser-to-S3
direct upload, checked on confirmation exactly as a form upload is."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction

from ..models import ACCEPTED_NAMES, CONTENT_TYPES, EXTENSIONS, KEY_FORMATS, Photo, photo_upload_to
from ..pipelines import media_storage
from ..validation import UploadRejected, clean_filename, finish_upload, probe_upload
from .photos import StorageFailed, photo_create, photo_enqueue_analysis, photos_already_uploaded

logger = logging.getLogger(__name__)


@dataclass
class UploadOutcome:
    accepted: list[Photo] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (filename, message)


def photos_receive(*, owner, files, visibility: str) -> UploadOutcome:
    """Validate every file (a bad one never costs the good ones), report duplicates of
    the owner's photos (also within this batch) instead of storing them, and store each
    accepted file in its own transaction with its analysis enqueued on commit."""
    outcome = UploadOutcome()
    probed_files = []
    for upload in files:  # the cheap checks for all, then one query for duplicates, then decoding
        try:
            probed_files.append(probe_upload(upload))
        except UploadRejected as exc:
            outcome.rejected.append((exc.filename, exc.message))
    known = photos_already_uploaded(owner=owner, sha256s=[p.sha256 for p in probed_files])
    for probed in probed_files:
        if probed.sha256 in known:  # refused before its pixels are decoded
            outcome.rejected.append((probed.original_filename, f"is already in your photos (as {known[probed.sha256]})."))
            continue
        try:
            checked = finish_upload(probed)
        except UploadRejected as exc:
            outcome.rejected.append((exc.filename, exc.message))
            continue
        known[checked.sha256] = checked.original_filename
        try:
            with transaction.atomic():
                outcome.accepted.append(photo_create(owner=owner, upload=checked, visibility=visibility))
        except StorageFailed as exc:
            known.pop(checked.sha256, None)
            outcome.rejected.append((checked.original_filename, str(exc)))
        except IntegrityError:
            # Another request stored the same file for this owner a moment ago (the
            # unique constraint decided the race); photo_create removed our copy.
            if not Photo.objects.filter(owner=owner, sha256=checked.sha256).exists():
                raise
            outcome.rejected.append((checked.original_filename, "is already in your photos."))
    return outcome


# --- direct browser-to-S3 uploads -----------------------------------------------------

DIRECT_UPLOAD_SECONDS = 600
DIRECT_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/avif": "avif",
                "image/heic": "heic", "image/heif": "heic"}
# The browser posts here, outside the prefix the labeler watches; a confirmed upload is
# copied to its uploads/ key (infra/resources.py INCOMING_PREFIX; a lifecycle rule expires
# what is never confirmed).
INCOMING_PREFIX = "incoming"


class DirectUploadError(ValueError):
    """The direct upload cannot go ahead or be confirmed; the message is for the user."""


def direct_upload_start(*, owner, filename: str, content_type: str, size: int) -> dict:
    """A presigned POST letting the browser put one file straight into the bucket, under
    incoming/, with the size and content type enforced by S3 itself, and a signed token
    to confirm it."""
    if content_type in ("", "application/octet-stream"):
        # Browsers outside Apple's leave a HEIC file's type empty: its name says what it claims.
        claimed = KEY_FORMATS.get(PurePosixPath(filename or "").suffix.lower().lstrip("."))
        content_type = CONTENT_TYPES.get(claimed, "")
    if content_type not in DIRECT_TYPES:
        raise DirectUploadError(f"Upload {ACCEPTED_NAMES} photos.")
    limit = settings.PHOTOS_MAX_UPLOAD_BYTES
    if not 0 < size <= limit:
        raise DirectUploadError(f"Photos must be between 1 byte and {limit} bytes.")
    key = photo_upload_to(Photo(), f"upload.{DIRECT_TYPES[content_type]}")
    incoming = f"{INCOMING_PREFIX}/{key.rsplit('/', 1)[1]}"
    post = media_storage().presigned_post(key=incoming, content_type=content_type, max_bytes=limit,
                                          expires_in=DIRECT_UPLOAD_SECONDS)
    token = signing.dumps({"incoming": incoming, "key": key, "user": owner.pk, "filename": clean_filename(filename)},
                          salt="direct-upload")
    return {"url": post["url"], "fields": post["fields"], "token": token}


def direct_upload_confirm(*, owner, token: str, visibility: str = Photo.Visibility.PRIVATE) -> Photo:
    """Check the object the browser uploaded exactly as a form upload is checked, then
    copy the very version that was checked to its uploads/ key and create its Photo.
    The POST can be replayed for its lifetime, but only over the incoming/ object: what
    was validated is never overwritten, and a token confirms once (a confirm racing another
    of the same token updates the same photo with the same checked bytes). The incoming object
    is deleted either way."""
    try:
        data = signing.loads(token, salt="direct-upload", max_age=DIRECT_UPLOAD_SECONDS * 2)
    except signing.BadSignature:
        raise DirectUploadError("This upload link is invalid or has expired.") from None
    if data.get("user") != owner.pk:
        raise DirectUploadError("This upload belongs to someone else.")
    incoming, key = data.get("incoming", ""), data["key"]
    if not incoming.startswith(f"{INCOMING_PREFIX}/"):
        raise DirectUploadError("This upload link is invalid or has expired.")
    if Photo.objects.filter(image=key).exclude(sha256="").exists():
        raise DirectUploadError("This upload was confirmed already.")
    storage = media_storage()
    try:
        content, version = storage.read_version(incoming, max_bytes=settings.PHOTOS_MAX_UPLOAD_BYTES)
    except (FileNotFoundError, OSError):
        raise DirectUploadError("The file never reached storage; try the upload again.") from None
    try:
        probed = probe_upload(SimpleUploadedFile(data["filename"], content))
        if probed.sha256 in photos_already_uploaded(owner=owner, sha256s=[probed.sha256]):
            raise UploadRejected(probed.original_filename, "is already in your photos.")
        checked = finish_upload(probed)
        if EXTENSIONS[checked.format] != PurePosixPath(key).suffix.lstrip("."):
            # The key was named for the type the browser claimed; what is stored is served
            # and analysed by its extension, so a mismatch is refused, not stored.
            raise UploadRejected(checked.original_filename,
                                 f"is a {checked.format} image but was sent as another type; upload it again.")
        storage.copy_version(incoming, version, to=key, content_type=CONTENT_TYPES[checked.format])
    except UploadRejected as exc:
        raise DirectUploadError(f"{exc.filename} {exc.message}") from None
    finally:
        _discard(incoming)
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
            for name, value in checked.taken_fields().items():
                setattr(photo, name, value)
            photo.visibility = visibility
            photo.save()
            transaction.on_commit(lambda: photo_enqueue_analysis(photo_id=photo.id))
    except IntegrityError:
        # The same file confirmed twice at once: the unique constraint kept one.
        discard_unless_claimed(key)
        raise DirectUploadError(f"{checked.original_filename} is already in your photos.") from None
    return photo


def discard_unless_claimed(key: str) -> bool:
    """Delete the copy a losing confirm made, unless a photo holds the key (a racing
    confirm of the same token, or the sync, got there first: deleting every version then
    would erase a photo its owner was told had arrived). True if deleted."""
    if Photo.objects.filter(image=key).exists():
        return False
    _discard(key)
    return True


def _discard(name: str) -> None:
    """Delete a direct upload's object now (every version); the incoming/ lifecycle rule
    is the net if this fails."""
    try:
        media_storage().delete(name)
    except Exception:
        logger.warning("could not delete %s; the lifecycle rule will", name, exc_info=True)
