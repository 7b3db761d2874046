"""One pipeline interface and one media storage, each chosen once from settings."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from photos.pipelines import Pipeline, PipelineUnsupported, periodic_tasks, pipeline
from photos.pipelines.aws import AwsPipeline
from photos.pipelines.local import LocalPipeline

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("name", "cls"), [("local", LocalPipeline), ("aws", AwsPipeline)])
def test_the_setting_picks_one_implementation(settings, name, cls):
    settings.PHOTOS_PIPELINE = name

    assert type(pipeline()) is cls
    assert pipeline() is pipeline()  # made once per name


def test_every_pipeline_implements_the_same_operations():
    abstract = {name for name, member in inspect.getmembers(Pipeline) if getattr(member, "__isabstractmethod__", False)}

    assert abstract == {"enqueue_analysis", "reanalyse"}
    for cls in (LocalPipeline, AwsPipeline):
        assert not cls.__abstractmethods__, cls


def test_only_the_aws_pipeline_syncs_and_backfills(settings):
    settings.PHOTOS_PIPELINE = "local"
    assert pipeline().sync() == {"skipped": "the local pipeline writes records straight to the database"}
    assert periodic_tasks() == {}
    with pytest.raises(PipelineUnsupported, match="no bucket backfill"):
        pipeline().backfill([("1", "uploads/a.jpg", 1, "e")])

    settings.PHOTOS_PIPELINE = "aws"
    assert AwsPipeline.syncs_records and AwsPipeline.backfills
    assert periodic_tasks()["sync-labels"]["task"] == "photos.tasks.sync_labels"


@pytest.mark.parametrize(("name", "expected"), [("local", False), ("aws", True)])
def test_celery_beat_runs_the_sync_only_for_the_aws_pipeline(name, expected):
    env = {k: v for k, v in os.environ.items() if k not in {"PHOTOS_PIPELINE", "LABELS_TABLE_NAME"}}
    env.update(PHOTOS_PIPELINE=name, LABELS_TABLE_NAME="labels", DJANGO_SETTINGS_MODULE="mediaapp.settings")
    code = "from mediaapp.celery import app; print(sorted(app.conf.beat_schedule))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    schedule = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    assert "sweep-stuck-photos" in schedule
    assert ("sync-labels" in schedule) is expected
