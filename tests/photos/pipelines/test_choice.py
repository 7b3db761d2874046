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


@pytest.mark.parametrize("name", ["local", "aws"])
def test_the_worker_knows_every_task_beat_and_the_app_send(name):
    env = {k: v for k, v in os.environ.items() if k not in {"PHOTOS_PIPELINE", "LABELS_TABLE_NAME"}}
    env.update(PHOTOS_PIPELINE=name, LABELS_TABLE_NAME="labels", DJANGO_SETTINGS_MODULE="mediaapp.settings")
    # What a worker does at start: set Django up, import the autodiscovered task modules.
    code = ("import django; django.setup(); from mediaapp.celery import app; app.loader.import_default_modules(); "
            "print(sorted(app.conf.beat_schedule[k]['task'] for k in app.conf.beat_schedule)); "
            "print(sorted(t for t in app.tasks if t.startswith('photos.')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    beat, known = (ast.literal_eval(line) for line in result.stdout.strip().splitlines()[-2:])
    sent = {"photos.tasks.analyze_photo", "photos.tasks.make_thumbnail", "photos.tasks.sync_labels",
            "photos.tasks.sync_photo", "photos.tasks.erase_photos"}
    assert set(beat) | sent <= set(known)


def test_a_conflicting_or_throttled_transaction_is_retried_and_a_failed_condition_is_not():
    from botocore.exceptions import ClientError

    from photos.pipelines.dynamodb import with_backoff

    def cancelled(*reasons):
        error = ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "x"}}, "TransactWriteItems")
        error.response["CancellationReasons"] = [{"Code": r} for r in reasons]
        return error

    calls = []

    def conflict_then_ok():
        calls.append(1)
        if len(calls) == 1:
            raise cancelled("None", "TransactionConflict")
        return "ok"

    assert with_backoff(conflict_then_ok, sleep=lambda s: None) == "ok" and len(calls) == 2

    def condition_failed():
        raise cancelled("ConditionalCheckFailed", "None")

    with pytest.raises(ClientError):
        with_backoff(condition_failed, sleep=lambda s: None)
