"""The words a photo is found by: text the detector read in it, the words of the title
and caption its owner wrote, and how many public photos show each label (what the
search box suggests to visitors). Registered through photos.models."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone


class DetectedText(models.Model):
    class Type(models.TextChoices):
        LINE = "LINE", "Line"
        WORD = "WORD", "Word"

    photo = models.ForeignKey("photos.Photo", on_delete=models.CASCADE, related_name="texts")
    text = models.CharField(max_length=500)
    type = models.CharField(max_length=4, choices=Type.choices)
    confidence = models.FloatField()
    box = models.JSONField(default=dict)

    class Meta:
        ordering = ["id"]
        verbose_name = "detected text"
        verbose_name_plural = "detected text"
        indexes = [
            # Search: a word found in a photo, whatever its case (iexact is UPPER() = UPPER()).
            models.Index(Upper("text"), "photo", name="text_word_upper", condition=models.Q(type="WORD")),
        ]

    def __str__(self) -> str:
        return self.text


class DescriptionWord(models.Model):
    """A word of the title or caption a photo's owner wrote, lower-cased: what search
    probes, through an index on the word, as it probes the words found in the photo."""

    photo = models.ForeignKey("photos.Photo", on_delete=models.CASCADE, related_name="description_words", db_index=False)
    word = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["photo", "word"], name="description_word_once")]
        indexes = [models.Index(fields=["word", "photo"], name="description_word")]

    def __str__(self) -> str:
        return self.word


class PublicLabelCount(models.Model):
    """How many public photos show a label (at or above the display threshold, or
    approved), counted over the whole gallery at ``counted_at``: the search box's
    suggestions for visitors, and their counts. Recounted by the beat task
    count_public_labels (selectors.suggestions)."""

    name = models.CharField(max_length=100, unique=True)
    photos = models.PositiveIntegerField()
    counted_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name}: {self.photos}"
