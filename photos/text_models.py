"""The words a photo is found by: text the detector read in it, and the words of the
title and caption its owner wrote. Registered through photos.models."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Upper


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
