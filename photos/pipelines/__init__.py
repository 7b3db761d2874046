"""The analysis pipeline, chosen once from settings: ``PHOTOS_PIPELINE`` names one
implementation of :class:`Pipeline` (local: the Celery worker and the local detector;
aws: S3 events, the labeler Lambda and the DynamoDB sync). Everything else asks
``pipeline()`` and never branches on the setting.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .base import Pipeline, PipelineUnsupported

__all__ = ["PIPELINES", "Pipeline", "PipelineUnsupported", "pipeline"]

PIPELINES = {
    "local": "photos.pipelines.local.LocalPipeline",
    "aws": "photos.pipelines.aws.AwsPipeline",
}


def pipeline() -> Pipeline:
    """The pipeline ``PHOTOS_PIPELINE`` names (one instance per name)."""
    return _build(settings.PHOTOS_PIPELINE)


@cache
def _build(name: str) -> Pipeline:
    return import_string(PIPELINES[name])()
