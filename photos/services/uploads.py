"""Receiving uploaded files: validate each, refuse duplicates, store the rest. Shared by
the "My photos" form and the JSON API so both behave the same; and the browser-to-S3
direct uploads (a presigned POST for a photo, a resumable multipart upload for a video),
checked on confirmation exactly as a form upload is."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from botocore.exceptions import BotoCoreError, ClientError

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.db import IntegrityError, transaction
from django.template.defaultfilters import filesizeformat

from ..models import (ACCEPTED_NAMES, ACCEPTED_VIDEO_NAMES, CONTENT_TYPES, EXTENSIONS, KEY_FORMATS, VIDEO_FORMATS,
                      Photo, photo_upload_to)
from ..pipelines import media_storage
from ..validation import UploadRejected, clean_filename, finish_upload, probe_upload
from .photos import StorageFailed, checked_fields, photo_create, photo_enqueue_new, photos_already_uploaded

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


class DirectUploadRetry(DirectUploadError):
    """Storage failed, not the file: nothing was lost, the same call can be made again."""


def direct_upload_start(*, owner, filename: str, content_type: str, size: int) -> dict:
    """A presigned POST letting the browser put one photo straight into the bucket, under
    incoming/, with the size and content type enforced by S3 itself, and a signed token
    to confirm it. A video gets a multipart upload instead (``video_upload_start``)."""
    if content_type in ("", "application/octet-stream"):
        # Browsers outside Apple's leave a HEIC file's type empty: its name says what it claims.
        claimed = KEY_FORMATS.get(PurePosixPath(filename or "").suffix.lower().lstrip("."))
        content_type = CONTENT_TYPES.get(claimed, "")
    if content_type.startswith("video/"):
        return video_upload_start(owner=owner, filename=filename, content_type=content_type, size=size)
    if content_type not in DIRECT_TYPES:
        raise DirectUploadError(f"Upload {ACCEPTED_NAMES} photos or {ACCEPTED_VIDEO_NAMES} videos.")
    limit = settings.PHOTOS_MAX_UPLOAD_BYTES
    key, incoming = _new_keys("Photos", DIRECT_TYPES[content_type], size=size, limit=limit)
    post = media_storage().presigned_post(key=incoming, content_type=content_type, max_bytes=limit,
                                          expires_in=DIRECT_UPLOAD_SECONDS)
    token = signing.dumps({"incoming": incoming, "key": key, "user": owner.pk, "filename": clean_filename(filename)},
                          salt=PHOTO_SALT)
    return {"url": post["url"], "fields": post["fields"], "token": token}


def _new_keys(what: str, ext: str, *, size: int, limit: int) -> tuple[str, str]:
    """A direct upload's key under uploads/ and the incoming/ key the browser sends to,
    once its declared size is within ``limit``."""
    if not 0 < size <= limit:
        raise DirectUploadError(f"{what} must be between 1 byte and {filesizeformat(limit)}.".replace("\xa0", " "))
    key = photo_upload_to(Photo(), f"upload.{ext}")
    return key, f"{INCOMING_PREFIX}/{key.rsplit('/', 1)[1]}"


# --- videos: multipart uploads, resumable ------------------------------------------------
# A video goes up in parts, each PUT to its own presigned URL, several at once; a part that
# fails is sent again, and an upload interrupted (a closed laptop, a reload) resumes with
# the parts S3 already has, for MULTIPART_SECONDS (the page remembers it a little less).
# Its confirmation is accepted CONFIRM_GRACE_SECONDS longer, so an upload resumed late can
# still be checked. The incoming/ lifecycle rule aborts what is never finished two days
# after it started (infra/resources.py INCOMING_MULTIPART_DAYS).
VIDEO_DIRECT_TYPES = {"video/mp4": "mp4", "video/x-m4v": "mp4", "video/quicktime": "mov", "video/webm": "webm"}
MULTIPART_SECONDS = 24 * 3600
CONFIRM_GRACE_SECONDS = 12 * 3600
PART_URL_SECONDS = 3600
MAX_URLS_PER_CALL = 100
S3_MAX_PARTS = 10_000
# A confirmation reads, checks and copies the whole video: one at a time per upload.
CONFIRM_LOCK_SECONDS = 30 * 60
PHOTO_SALT, VIDEO_SALT = "direct-upload", "direct-video-upload"


def part_size(size: int) -> int:
    """Parts of PHOTOS_MULTIPART_PART_BYTES, larger (whole MiB) when S3's 10,000 parts
    would not hold the file at that size."""
    mib = 1024 * 1024
    return max(settings.PHOTOS_MULTIPART_PART_BYTES, math.ceil(size / S3_MAX_PARTS / mib) * mib)


def _lengths(data: dict) -> dict[int, int]:
    """Each part's length in the declared file (the last one shorter)."""
    size, each = data["size"], data["part_size"]
    return {n: min(each, size - (n - 1) * each) for n in range(1, math.ceil(size / each) + 1)}


def video_upload_start(*, owner, filename: str, content_type: str, size: int) -> dict:
    """A multipart upload under incoming/ and a signed token for its parts and its
    confirmation: how large each part is and how many there are."""
    ext = VIDEO_DIRECT_TYPES.get(content_type)
    if not ext:
        raise DirectUploadError(f"Upload {ACCEPTED_VIDEO_NAMES} videos.")
    key, incoming = _new_keys("Videos", ext, size=size, limit=settings.PHOTOS_MAX_VIDEO_BYTES)
    upload_id = media_storage().multipart_start(incoming, content_type=content_type)
    each = part_size(size)
    token = signing.dumps({"incoming": incoming, "key": key, "user": owner.pk, "filename": clean_filename(filename),
                           "upload_id": upload_id, "size": size, "part_size": each}, salt=VIDEO_SALT)
    return {"token": token, "multipart": {"part_size": each, "parts": math.ceil(size / each)}}


def video_upload_parts(*, owner, token: str, numbers: list) -> dict:
    """The parts that arrived (for a resumed upload), and a presigned PUT URL for each
    part number asked for (at most MAX_URLS_PER_CALL, within the file's parts), each signed
    for its part's exact length: S3 refuses a PUT of any other size, so no one stores
    more than the declared file (whose size was checked). ``joined``: the parts were
    joined already (a confirmation that did not finish): only the confirmation is left."""
    data = _video_token(owner, token)
    lengths = _lengths(data)
    if len(numbers) > MAX_URLS_PER_CALL or not all(type(n) is int and n in lengths for n in numbers):
        raise DirectUploadError(f"Ask for at most {MAX_URLS_PER_CALL} parts, numbered 1 to {len(lengths)}.")
    storage = media_storage()
    try:
        arrived = storage.multipart_parts(data["incoming"], data["upload_id"])
    except FileNotFoundError:
        if _joined(data) is None:
            raise DirectUploadError("This upload has finished or expired; upload the file again.") from None
        return {"uploaded": [{"part": n, "size": length} for n, length in lengths.items()], "urls": {},
                "joined": True}
    urls = storage.multipart_part_urls(data["incoming"], data["upload_id"], {n: lengths[n] for n in sorted(set(numbers))},
                                       expires_in=PART_URL_SECONDS)
    return {"uploaded": [{"part": n, "size": size} for n, size, _ in arrived], "urls": {str(n): u for n, u in urls.items()},
            "joined": False}


def video_upload_abort(*, owner, token: str) -> None:
    """The owner cancelled: S3 drops the parts now."""
    data = _video_token(owner, token)
    media_storage().multipart_abort(data["incoming"], data["upload_id"])


def _video_token(owner, token: str) -> dict:
    data = _token(owner, token)
    if "upload_id" not in data:
        raise DirectUploadError("This upload link is invalid or has expired.")
    return data


def _token(owner, token: str, *, grace: int = 0) -> dict:
    """A direct upload's signed token, the owner's own and not expired (a photo's POST
    lasts minutes, a video's multipart upload a day; ``grace`` more for a confirmation)."""
    for salt, max_age in ((PHOTO_SALT, DIRECT_UPLOAD_SECONDS * 2), (VIDEO_SALT, MULTIPART_SECONDS + grace)):
        try:
            data = signing.loads(token, salt=salt, max_age=max_age)
            break
        except signing.SignatureExpired:
            raise DirectUploadError("This upload link has expired; upload the file again.") from None
        except signing.BadSignature:
            continue
    else:
        raise DirectUploadError("This upload link is invalid or has expired.")
    if data.get("user") != owner.pk:
        raise DirectUploadError("This upload belongs to someone else.")
    if not str(data.get("incoming", "")).startswith(f"{INCOMING_PREFIX}/"):
        raise DirectUploadError("This upload link is invalid or has expired.")
    return data


def _joined(data: dict) -> str | None:
    """The version of a video whose parts were joined already (an earlier confirmation
    that failed after the join: a timeout, a full disk), if it is the declared size."""
    found = media_storage().current(data["incoming"])
    return found[1] if found is not None and found[0] == data["size"] else None


def _assembled(data: dict) -> tuple[TemporaryUploadedFile, str]:
    """Complete a video's multipart upload once every part has arrived, exactly as the
    file was declared (the part URLs were signed for their lengths; the sizes are checked
    again here), then the object in a temporary file on disk, read in chunks, and the
    version it is. Joined already by an earlier confirmation: that object."""
    storage, incoming, upload_id = media_storage(), data["incoming"], data["upload_id"]
    lengths = _lengths(data)
    try:
        arrived = storage.multipart_parts(incoming, upload_id)
    except FileNotFoundError:
        arrived, version = None, _joined(data)
        if version is None:
            raise DirectUploadError("This upload has finished or expired; upload the file again.") from None
    if arrived is not None:
        if missing := set(lengths) - {n for n, _, _ in arrived}:
            raise DirectUploadError(f"{len(missing)} of {len(lengths)} parts of {data['filename']} have not arrived; "
                                    f"choose the file again to resume the upload.")
        if any(lengths.get(n) != got for n, got, _ in arrived):
            storage.multipart_abort(incoming, upload_id)
            raise DirectUploadError(f"{data['filename']} arrived in parts that do not make the file that was "
                                    f"started; upload it again.")
        try:
            version = storage.multipart_complete(incoming, upload_id, sorted(arrived))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
                raise  # S3 or the network failed: nothing is lost, the confirmation can be tried again
            storage.multipart_abort(incoming, upload_id)  # the parts cannot make the file
            raise DirectUploadError(f"Storage could not join the parts of {data['filename']} ({code}); "
                                    f"upload it again.") from None
    upload = TemporaryUploadedFile(data["filename"], "application/octet-stream", data["size"], None)
    try:
        upload.size = storage.download_version(incoming, version, upload.file, max_bytes=settings.PHOTOS_MAX_VIDEO_BYTES)
        upload.file.flush()
    except BaseException:
        upload.close()
        raise
    return upload, version


def direct_upload_confirm(*, owner, token: str, visibility: str = Photo.Visibility.PRIVATE) -> Photo:
    """Check the object the browser uploaded exactly as a form upload is checked, then
    copy the very version that was checked to its uploads/ key and create its Photo.
    The POST can be replayed for its lifetime, but only over the incoming/ object: what
    was validated is never overwritten, and a token confirms once (one confirmation at a
    time per upload; a confirm racing another of the same token updates the same photo
    with the same checked bytes). The incoming object is deleted once the file is stored
    or refused; a confirmation that fails otherwise (storage unreachable, a timeout) leaves
    it, and can be tried again. A video's multipart upload is completed first, and its key
    takes the extension of the container it really is (an iPhone's .mov may be an MP4)."""
    data = _token(owner, token, grace=CONFIRM_GRACE_SECONDS)
    incoming, key = data["incoming"], data["key"]
    video = "upload_id" in data
    if Photo.objects.filter(image__in=_names(key, video)).exclude(sha256="").exists():
        raise DirectUploadError("This upload was confirmed already.")
    lock = f"direct-upload-confirm:{incoming}"
    if not cache.add(lock, True, CONFIRM_LOCK_SECONDS):
        raise DirectUploadError("This upload is being checked already; wait a moment.")
    try:
        checked, key = _checked_and_stored(data, owner=owner, video=video)
    finally:
        cache.delete(lock)
    try:
        with transaction.atomic():
            photo = Photo.objects.select_for_update().filter(image=key).first()
            if photo is None:
                photo = Photo(image=key)
            elif photo.owner_id not in (None, owner.pk):
                raise DirectUploadError("This upload belongs to someone else.")
            photo.owner = owner
            for name, value in checked_fields(checked).items():
                setattr(photo, name, value)
            photo.visibility = visibility
            photo.save()
            photo_enqueue_new(photo)
    except IntegrityError:
        # The same file confirmed twice at once: the unique constraint kept one.
        discard_unless_claimed(key)
        raise DirectUploadError(f"{checked.original_filename} is already in your photos.") from None
    return photo


def _checked_and_stored(data: dict, *, owner, video: bool):
    """The incoming object read, checked and copied (the version checked) to its key:
    (what the check found, the key). The incoming object is deleted unless something
    other than the file failed."""
    storage, incoming, key = media_storage(), data["incoming"], data["key"]
    upload = None
    try:
        try:
            if video:
                upload, version = _assembled(data)
            else:
                content, version = storage.read_version(incoming, max_bytes=settings.PHOTOS_MAX_UPLOAD_BYTES)
                upload = SimpleUploadedFile(data["filename"], content)
        except FileNotFoundError:
            raise DirectUploadError("The file never reached storage; try the upload again.") from None
        except (OSError, BotoCoreError, ClientError) as exc:  # the incoming object is kept
            logger.warning("confirming %s: storage failed: %s", incoming, exc)
            raise DirectUploadRetry(f"Storage could not be reached while checking {data['filename']}; "
                                    f"try again in a moment (nothing was lost).") from None
        probed = probe_upload(upload)
        if probed.sha256 in photos_already_uploaded(owner=owner, sha256s=[probed.sha256]):
            raise UploadRejected(probed.original_filename, "is already in your photos.")
        checked = finish_upload(probed)
        if video and checked.video is not None:
            key = f"{key.rsplit('.', 1)[0]}.{EXTENSIONS[checked.format]}"
        elif EXTENSIONS[checked.format] != PurePosixPath(key).suffix.lstrip("."):
            # The key was named for the type the browser claimed; what is stored is served
            # and analysed by its extension, so a mismatch is refused, not stored.
            kind = "video" if checked.video is not None else "image"
            raise UploadRejected(checked.original_filename,
                                 f"is a {checked.format} {kind} but was sent as another type; upload it again.")
        try:
            storage.copy_version(incoming, version, to=key, content_type=CONTENT_TYPES[checked.format])
        except (OSError, BotoCoreError, ClientError) as exc:
            logger.warning("confirming %s: the copy to %s failed: %s", incoming, key, exc)
            raise DirectUploadRetry(f"Storage could not be reached while storing {data['filename']}; "
                                    f"try again in a moment (nothing was lost).") from None
    except UploadRejected as exc:
        _discard(incoming)
        raise DirectUploadError(f"{exc.filename} {exc.message}") from None
    finally:
        if upload is not None:
            upload.close()
    _discard(incoming)
    return checked, key


def _names(key: str, video: bool) -> list[str]:
    """The keys a confirmed upload may have: a video's extension is its container's."""
    stem = key.rsplit(".", 1)[0]
    return [f"{stem}.{ext}" for ext in sorted({EXTENSIONS[f] for f in VIDEO_FORMATS})] if video else [key]


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
