"""The pipeline's bookkeeping tables: every analysis record as received, how far the
DynamoDB sync has read, and the erasure outbox. Registered through photos.models."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AnalysisRecord(models.Model):
    """Every LabelRecord as received, for audit and replay."""

    photo = models.ForeignKey("photos.Photo", null=True, on_delete=models.SET_NULL, related_name="records")
    key = models.CharField(max_length=1024)
    updated_at = models.CharField(max_length=32)
    status = models.CharField(max_length=16)
    engine = models.CharField(max_length=20)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["key", "updated_at"], name="analysis_record_unique")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.updated_at}"


class SyncCheckpoint(models.Model):
    """How far the DynamoDB sync has read each shard of the sync index, and who holds
    the shard's lease (so two workers never sync one shard at the same time)."""

    shard = models.PositiveSmallIntegerField(primary_key=True)
    checkpoint = models.CharField(max_length=32, blank=True, help_text="Highest updated_at applied.")
    lease_token = models.CharField(max_length=36, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    records_applied = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"shard {self.shard} at {self.checkpoint or 'start'}"


class PendingErasure(models.Model):
    """An erasure whose stored files are not all gone yet: written in the transaction
    that erases the photo (or by the sync, for a tombstone), and removed only once
    storage shows no version of any of them is left. The outbox that makes every
    erasure finish, whatever storage does on the first try."""

    key = models.CharField(max_length=1024, unique=True, help_text="The photo's object key.")
    names = models.JSONField(help_text="Every stored name to erase: the original, thumbnail, rendition.")
    reason = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["next_attempt_at"]

    def __str__(self) -> str:
        return f"{self.key} ({self.attempts} attempts)"
