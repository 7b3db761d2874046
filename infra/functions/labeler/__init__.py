"""The labeler: analysis core and record format, shared by the Lambda and Django."""

from .core import AnalyzeOptions, ImageRef, analyze, is_transient
from .record import LabelRecord, RecordError

__all__ = ["AnalyzeOptions", "ImageRef", "LabelRecord", "RecordError", "analyze", "is_transient"]
