"""Photos, their machine and editorial labels, moderation state, and the raw records.

Writes go through photos.services; this module holds the schema and small, pure
helpers only.
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from .querysets import PhotoQuerySet

# Stored keys keep one lowercase extension per format (the labeler compares suffixes in
# lower case, so objects put into the bucket directly may use any case).
# What Pillow calls each format it reads (HEIF through pi-heif) -> the stored key's
# extension and the content type it is served with. MPO (a JPEG holding a second picture,
# as many phones write) is a JPEG to every browser and to Rekognition.
EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "AVIF": "avif", "HEIF": "heic",
              "MP4": "mp4", "MOV": "mov", "WEBM": "webm"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
                 "AVIF": "image/avif", "HEIF": "image/heic",
                 "MP4": "video/mp4", "MOV": "video/quicktime", "WEBM": "video/webm"}
VIDEO_FORMATS = frozenset({"MP4", "MOV", "WEBM"})
# A stored key's extension -> its format, as the app names it.
KEY_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF", "heic": "HEIF",
               "heif": "HEIF", "mp4": "MP4", "mov": "MOV", "webm": "WEBM"}
ACCEPTED_NAMES = "JPEG, PNG, WebP, HEIC or AVIF"
ACCEPTED_VIDEO_NAMES = "MP4, MOV or WebM"
UPLOAD_PREFIX = "uploads"
THUMBNAIL_PREFIX = "thumbnails"


def photo_upload_to(instance: Photo, filename: str) -> str:
    """``uploads/<yyyy>/<mm>/<uuid>.<ext>``: nothing of the user's filename reaches the
    key, so hostile names cannot traverse paths or collide."""
    ext = PurePosixPath(filename).suffix.lower().lstrip(".") or "bin"
    now = timezone.now()
    return f"{UPLOAD_PREFIX}/{now:%Y}/{now:%m}/{instance.uid}.{ext}"


def thumbnail_upload_to(instance: Photo, filename: str) -> str:
    return f"{THUMBNAIL_PREFIX}/{instance.uid}.jpg"


class Photo(models.Model):
    """A library item: a photo or a video (``kind``, as Immich's asset type): one model, so
    videos keep every rule photos have (visibility, trash, reports, moderation, erasure)."""

    class Kind(models.TextChoices):
        PHOTO = "photo", "Photo"
        VIDEO = "video", "Video"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        QUEUED = "queued", "Queued"
        ANALYZING = "analyzing", "Analyzing"
        LABELED = "labeled", "Labeled"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    class Moderation(models.TextChoices):
        NONE = "none", "Not flagged"
        FLAGGED = "flagged", "Flagged"
        ESCALATED = "escalated", "Escalated"
        CLEARED = "cleared", "Cleared"
        REMOVED = "removed", "Removed"
        APPEALED = "appealed", "Appealed"  # removed, and its owner asked for another look

    # States a moderator still has to decide; such photos are hidden from public pages.
    AWAITING_MODERATION = (Moderation.FLAGGED, Moderation.ESCALATED, Moderation.APPEALED)
    # Removed, appealed or not: served to no one but staff and the photo's owner (to appeal it knowingly).
    WITHHELD = (Moderation.REMOVED, Moderation.APPEALED)
    # Flagged, escalated and removed photos never appear on public pages.
    PUBLIC_MODERATION_STATES = (Moderation.NONE, Moderation.CLEARED)

    class Visibility(models.TextChoices):
        PRIVATE = "private", "Private"
        PUBLIC = "public", "Public"

    class TakenFrom(models.TextChoices):
        CAMERA = "camera", "Date taken"
        UPLOAD = "upload", "Uploaded"  # the file says no date: the upload time stands in

    PENDING_STATUSES = (Status.UPLOADED, Status.QUEUED, Status.ANALYZING)

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="photos",
        help_text="Empty for images put into the bucket directly.",
    )
    image = models.FileField(upload_to=photo_upload_to, max_length=1024, unique=True)
    thumbnail = models.FileField(upload_to=thumbnail_upload_to, max_length=255, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PHOTO, editable=False)
    # Videos: length, codec (FFmpeg's name), the poster's time (ms).
    duration_ms = models.PositiveIntegerField(null=True, blank=True, editable=False)
    video_codec = models.CharField(max_length=16, blank=True, editable=False)
    poster_ms = models.PositiveIntegerField(null=True, blank=True, editable=False)
    original_filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True, editable=False)
    size = models.PositiveBigIntegerField(default=0, editable=False)
    width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    etag = models.CharField(max_length=200, blank=True, editable=False)
    # When the photo was taken, as the clock where it was taken read (EXIF DateTimeOriginal),
    # stored as if it were UTC: "May 2024" is the month on the camera's calendar wherever
    # the viewer is (Immich's local date time). taken_offset is the camera's UTC offset in
    # minutes when the file says it (OffsetTimeOriginal). A file without a date has its
    # upload time here, and taken_from says so.
    taken_at = models.DateTimeField(default=timezone.now, editable=False)
    taken_from = models.CharField(max_length=8, choices=TakenFrom.choices, default=TakenFrom.UPLOAD, editable=False)
    taken_offset = models.SmallIntegerField(null=True, blank=True, editable=False)
    # The owner's words for the photo (services.photos.photo_describe); empty: the machine
    # title from its labels stands.
    title = models.CharField(max_length=200, blank=True)
    caption = models.TextField(max_length=2000, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    status_reason = models.TextField(blank=True)
    analyzed_at = models.DateTimeField(null=True, blank=True)
    engine = models.CharField(max_length=20, blank=True)
    model_versions = models.JSONField(default=dict, blank=True)
    # updated_at of the last LabelRecord applied: older records arriving late are ignored.
    record_updated_at = models.CharField(max_length=32, blank=True, editable=False)
    analysis_attempts = models.PositiveIntegerField(default=0, editable=False)

    moderation_state = models.CharField(max_length=16, choices=Moderation.choices, default=Moderation.NONE)
    flagged_at = models.DateTimeField(null=True, blank=True)
    # What the moderator saw when clearing: {label name: confidence}. A later analysis
    # re-flags only with a label not in here or stronger than it was.
    cleared_moderation = models.JSONField(default=dict, blank=True)
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    # Soft lock: the moderator looking at the photo now, until when.
    moderation_locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    moderation_locked_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # In the owner's trash since then: shown to no one else, restorable for
    # TRASH_DAYS, then erased like a delete (services.photos_purge_trash).
    trashed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = PhotoQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("moderate_photo", "Can decide on flagged photos")]
        constraints = [
            # One copy of a file per owner, also when two uploads race (issue #10).
            models.UniqueConstraint(
                fields=["owner", "sha256"], condition=models.Q(owner__isnull=False) & ~models.Q(sha256=""),
                name="photo_unique_per_owner",
            ),
        ]
        indexes = [
            # Serves the default ordering of every photo list (newest first) with LIMIT.
            models.Index(fields=["-created_at", "-id"], name="photo_newest"),
            models.Index(fields=["status", "created_at"], name="photo_status_created"),
            models.Index(fields=["moderation_state", "created_at"], name="photo_moderation_created"),
            models.Index(fields=["engine"], name="photo_engine"),
            # My photos, a page at a time (keyset: created_at, id after the cursor).
            models.Index(fields=["owner", "-created_at", "-id"], name="photo_owner_newest"),
            # My photos' timeline and "date taken" sorts, a page at a time.
            models.Index(fields=["owner", "-taken_at", "-id"], name="photo_owner_taken"),
            models.Index(fields=["-taken_at", "-id"], name="photo_taken"),
            models.Index(fields=["trashed_at"], name="photo_trashed", condition=models.Q(trashed_at__isnull=False)),
            models.Index(fields=["visibility", "moderation_state", "status"], name="photo_public"),
        ]

    def __str__(self) -> str:
        return self.original_filename or self.image.name

    @property
    def key(self) -> str:
        return self.image.name

    @property
    def taken_local(self):
        """taken_at as the wall-clock time it is (naive: templates must not shift it)."""
        return self.taken_at.replace(tzinfo=None) if self.taken_at else None

    @property
    def is_video(self) -> bool:
        return self.kind == self.Kind.VIDEO

    @property
    def is_pending(self) -> bool:
        return self.status in self.PENDING_STATUSES

    @property
    def is_public(self) -> bool:
        """This photo is in ``Photo.objects.public()`` (checked without a query)."""
        return (self.visibility == self.Visibility.PUBLIC and self.trashed_at is None
                and self.status == self.Status.LABELED and self.moderation_state in self.PUBLIC_MODERATION_STATES)

    @property
    def withheld(self) -> bool:
        """A moderator removed it (an appeal changes nothing until a moderator restores it)."""
        return self.moderation_state in self.WITHHELD


class Label(models.Model):
    class Source(models.TextChoices):
        MACHINE = "machine", "Machine"
        EDITOR = "editor", "Editor"

    class Review(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    # No separate index: the (photo, name) unique constraint leads with photo_id. Every
    # index here is paid on each of the ~10 label rows an analysis writes.
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="labels", db_index=False)
    name = models.CharField(max_length=100)
    confidence = models.FloatField(null=True, blank=True, help_text="0-100; empty for editor-added labels")
    parents = models.JSONField(default=list, blank=True)
    categories = models.JSONField(default=list, blank=True)
    aliases = models.JSONField(default=list, blank=True)
    instances = models.JSONField(default=list, blank=True, help_text="[{box: {left, top, width, height}, confidence}]")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MACHINE)
    review_state = models.CharField(max_length=10, choices=Review.choices, default=Review.PENDING)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    missing_from_latest = models.BooleanField(
        default=False, help_text="Approved, but the latest analysis no longer finds it."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-confidence", "name"]
        constraints = [models.UniqueConstraint(fields=["photo", "name"], name="label_unique_per_photo")]
        indexes = [
            models.Index(fields=["name"], name="label_name"),
            models.Index(fields=["review_state", "confidence"], name="label_review_queue"),
        ]

    def __str__(self) -> str:
        return self.name


class ModerationLabel(models.Model):
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="moderation_labels", db_index=False)
    name = models.CharField(max_length=100)
    parent = models.CharField(max_length=100, blank=True)
    level = models.PositiveSmallIntegerField(default=1)
    confidence = models.FloatField()

    class Meta:
        ordering = ["-confidence"]
        constraints = [models.UniqueConstraint(fields=["photo", "name"], name="moderation_label_unique_per_photo")]
        indexes = [models.Index(fields=["name", "confidence"], name="moderation_name_conf")]

    def __str__(self) -> str:
        return self.name


class ReviewItem(Label):
    """The editors' review queue in the admin: pending labels, least confident first."""

    class Meta:
        proxy = True
        verbose_name = "label to review"
        verbose_name_plural = "labels to review"


class Flag(models.Model):
    """A person's report that a photo should not be public. One per person and photo."""

    class Reason(models.TextChoices):
        NUDITY = "nudity", "Nudity or sexual content"
        VIOLENCE = "violence", "Violence or gore"
        HATE = "hate", "Hate or harassment"
        SPAM = "spam", "Spam or scam"
        PRIVACY = "privacy", "Private information"
        COPYRIGHT = "copyright", "Copyright"
        OTHER = "other", "Something else"

    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="flags", db_index=False)
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["photo", "reporter"], name="flag_once_per_person")]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} by {self.reporter}"


class ModerationCase(Photo):
    """The moderators' queue in the admin: photos flagged automatically or by people."""

    class Meta:
        proxy = True
        verbose_name = "photo to moderate"
        verbose_name_plural = "photos to moderate"


def validate_category_thresholds(value) -> None:
    """An object of category name -> number from 0 to 100 (the admin form and the model
    both check it, so a bad row cannot break the pages that read it)."""
    if not isinstance(value, dict):
        kind = "a list" if isinstance(value, list) else "a string" if isinstance(value, str) else "a number"
        raise ValidationError('Give an object such as {"Explicit": 60}, not %(kind)s.', params={"kind": kind})
    for name, limit in value.items():
        if not str(name).strip() or not str(name).isprintable():
            raise ValidationError("A category name is empty or holds control characters.")
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 <= limit <= 100:
            raise ValidationError("%(name)s: the threshold must be a number from 0 to 100.", params={"name": name})


class ModerationSettings(models.Model):
    """Thresholds superusers change in the admin, in force at once (no deploy). One row;
    without it the settings module's defaults apply."""

    display_threshold = models.FloatField(
        default=70.0, validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Machine labels are shown at or above this confidence (0-100).",
    )
    flag_threshold = models.FloatField(
        default=80.0, validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="A moderation label at or above this confidence flags the photo (0-100).",
    )
    category_thresholds = models.JSONField(
        default=dict, blank=True, validators=[validate_category_thresholds],
        help_text='Per top-level moderation category, e.g. {"Swimwear or Underwear": 95, "Explicit": 60}.',
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "thresholds"
        verbose_name_plural = "thresholds"

    def __str__(self) -> str:
        return f"display {self.display_threshold:g}, flag {self.flag_threshold:g}"


# Why a photo was removed: the moderator chooses one, and its owner sees it.
REMOVAL_REASONS = {
    "nudity": "Nudity or sexual content",
    "violence": "Violence or gore",
    "hate": "Hateful symbols or content",
    "privacy": "Someone's personal information",
    "spam": "Spam or advertising",
    "copyright": "Someone else's work (copyright)",
    "other": "Against the site's rules",
}


class AuditEvent(models.Model):
    """One editorial or moderation change: who, when, what it was before and after."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approved label"
        REJECT = "reject", "Rejected label"
        RENAME = "rename", "Renamed label"
        MERGE = "merge", "Merged label"
        ADD = "add", "Added label"
        FLAG = "flag", "Flagged"
        CLEAR = "clear", "Cleared"
        REMOVE = "remove", "Removed"
        ESCALATE = "escalate", "Escalated"
        THRESHOLDS = "thresholds", "Changed thresholds"
        DELETE = "delete", "Deleted photo"
        VISIBILITY = "visibility", "Changed visibility"
        APPEAL = "appeal", "Appealed a removal"
        TRASH = "trash", "Moved to trash"
        RESTORE = "restore", "Restored from trash"
        DESCRIBE = "describe", "Changed title or caption"

    photo = models.ForeignKey(Photo, null=True, on_delete=models.SET_NULL, related_name="audit_events", db_index=False)
    label_name = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["photo", "-at"], name="audit_photo_at"),
            models.Index(fields=["label_name", "-at"], name="audit_label_at"),
        ]

    def __str__(self) -> str:
        return f"{self.summary} by {self.actor or 'system'} at {self.at:%Y-%m-%d %H:%M}"

    @property
    def summary(self) -> str:
        """What happened, in one line with what it changed to: "Renamed label Person →
        Human", "Removed (Spam or advertising)", "Made public"."""
        after = self.after if isinstance(self.after, dict) else {}
        if self.action in (self.Action.RENAME, self.Action.MERGE) and after.get("merged_into"):
            return f"{self.get_action_display()} {self.label_name} → {after['merged_into']}"
        if self.action == self.Action.REMOVE and after.get("reason"):
            return f"Removed ({REMOVAL_REASONS.get(after['reason'], after['reason'])})"
        if self.action == self.Action.VISIBILITY and after.get("visibility"):
            return f"Made {after['visibility']}"
        if self.action == self.Action.FLAG and self.actor_id is not None:
            # A person's report: it flags the photo only on enough evidence (the queue
            # says "Not flagged" otherwise), so the record says what happened.
            reason = after.get("reason")
            hid = after.get("moderation_state") == Photo.Moderation.FLAGGED and (self.before or {}).get(
                "moderation_state") != Photo.Moderation.FLAGGED
            label = Flag.Reason(reason).label if reason in Flag.Reason.values else ""
            return f"Reported{f' ({label})' if label else ''}{'; flagged: hidden until decided' if hid else ''}"
        return f"{self.get_action_display()} {self.label_name}".strip()


class LabelTaxonomy(models.Model):
    """Every machine label name with its parents and aliases, as the engine reported them
    (kept up to date by apply_records). Small: searching for a parent (Animal) becomes a lookup
    of its children here, then an indexed match on label names."""

    name = models.CharField(max_length=100, primary_key=True)
    parents = models.JSONField(default=list, blank=True)
    # Other names people use for it (Rekognition's Aliases: Person is also Human).
    aliases = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "label taxonomy"

    def __str__(self) -> str:
        return self.name


# The pipeline's bookkeeping tables live in their own module; imported here so Django
# registers them with this app and `from photos.models import ...` finds them.
from .pipeline_models import AnalysisRecord, PendingErasure, SyncCheckpoint  # noqa: E402,F401
from .text_models import DescriptionWord, DetectedText, PublicLabelCount  # noqa: E402,F401
