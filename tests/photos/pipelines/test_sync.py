"""DynamoDB -> Django sync under moto: checkpoints and overlap, late items, paging, two
workers at once, throttling injected with a botocore before-send hook, a sync killed
mid-way, UnprocessedKeys."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from moto import mock_aws

from infra.functions.labeler.table import item_of
from infra import resources
from infra.functions.labeler.record import Label as RecordLabel, LabelRecord
from infra.functions.labeler.table import SYNC_SHARDS, shard_for
from photos.pipelines import aws, dynamodb as table_access, sync
from photos.models import AnalysisRecord, Label, Photo, SyncCheckpoint

T0 = datetime(2026, 11, 22, 8, 0, 0, tzinfo=timezone.utc)


def stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(key: str, seconds: float, labels=("Dog", "Grass")) -> LabelRecord:
    return LabelRecord(
        bucket="media", key=key, status="LABELED", engine="rekognition",
        labels=tuple(RecordLabel(name=n, confidence=90.0) for n in labels),
        analyzed_at=stamp(seconds), updated_at=stamp(seconds),
    )


def keys_in_shard(shard: int, n: int, prefix="uploads/s") -> list[str]:
    keys, i = [], 0
    while len(keys) < n:
        key = f"{prefix}{i}.jpg"
        if shard_for(key) == shard:
            keys.append(key)
        i += 1
    return keys


@pytest.fixture
def table(monkeypatch, settings):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(table_access, "RETRY_BASE_SECONDS", 0.001)
    settings.SYNC_OVERLAP_SECONDS = 120
    # Parallel shards use their own connections, outside the test's transaction; the
    # concurrency test below runs them for real in a transactional test.
    settings.SYNC_PARALLEL_SHARDS = 1
    with mock_aws():
        # botocore's own retries off, so the tests see exactly what our backoff does.
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1", config=Config(retries={"max_attempts": 1, "mode": "standard"}))
        table = dynamodb.create_table(**resources.table_definition("labels"))
        yield table


def put(table, *records):
    for r in records:
        table.put_item(Item=item_of(r))


def checkpoints():
    return dict(SyncCheckpoint.objects.values_list("shard", "checkpoint"))


@pytest.mark.django_db
def test_sync_applies_every_shard_and_saves_checkpoints(table):
    recs = [record(k, i) for shard in range(SYNC_SHARDS) for i, k in enumerate(keys_in_shard(shard, 3))]
    put(table, *recs)

    result = sync.sync_labels(table=table)

    assert result.applied == len(recs) and result.invalid == 0
    assert result.shards == {s: "synced" for s in range(SYNC_SHARDS)}
    assert Photo.objects.count() == len(recs)
    assert Label.objects.count() == 2 * len(recs)
    assert checkpoints() == {s: stamp(2) for s in range(SYNC_SHARDS)}
    assert not SyncCheckpoint.objects.exclude(lease_token="").exists()  # leases released


@pytest.mark.django_db
def test_second_sync_rereads_only_the_overlap_and_changes_nothing(table):
    put(table, *[record(k, i * 100) for i, k in enumerate(keys_in_shard(0, 5))])  # 0..400 s
    sync.sync_shard(0, table=table)
    labels_before = list(Label.objects.values_list("id", "updated_at"))

    queried = []
    original = table.query
    table.query = lambda **kw: queried.append(kw) or original(**kw)
    result = sync.sync_shard(0, table=table)

    assert result.applied == 0
    assert result.stale == 2  # the records within 120 s of the checkpoint (300 s and 400 s)
    assert list(Label.objects.values_list("id", "updated_at")) == labels_before
    assert queried[0]["ExpressionAttributeValues"][":since"] == stamp(400 - 120)


@pytest.mark.django_db
def test_late_arriving_item_within_the_overlap_is_picked_up(table):
    keys = keys_in_shard(1, 3)
    put(table, record(keys[0], 100), record(keys[1], 200))
    sync.sync_shard(1, table=table)
    assert checkpoints()[1] == stamp(200)

    # Written after the sync, but stamped before the checkpoint (the Lambda stamps
    # updated_at when analysis starts; the index is eventually consistent).
    put(table, record(keys[2], 150))
    result = sync.sync_shard(1, table=table)

    assert result.applied == 1
    assert Photo.objects.filter(image=keys[2], status="labeled").exists()
    assert checkpoints()[1] == stamp(200)  # never moves backwards


@pytest.mark.django_db
def test_paging_applies_every_page(table, monkeypatch):
    monkeypatch.setattr(sync, "PAGE_SIZE", 3)
    keys = keys_in_shard(2, 10)
    put(table, *[record(k, i) for i, k in enumerate(keys)])

    result = sync.sync_shard(2, table=table)

    assert result.applied == 10 and result.pages >= 4
    assert checkpoints()[2] == stamp(9)


@pytest.mark.django_db
def test_a_busy_shard_is_skipped(table):
    put(table, *[record(k, 1) for s in range(SYNC_SHARDS) for k in keys_in_shard(s, 1)])
    SyncCheckpoint.objects.create(shard=3)
    assert sync._lease(3) is not None  # another worker holds shard 3

    result = sync.sync_labels(table=table)

    assert result.shards[3] == "busy"
    assert result.applied == SYNC_SHARDS - 1


@pytest.mark.django_db(transaction=True)
def test_parallel_shards_sync_everything_once(table, settings):
    settings.SYNC_PARALLEL_SHARDS = 2
    put(table, *[record(k, i) for s in range(SYNC_SHARDS) for i, k in enumerate(keys_in_shard(s, 5))])

    result = sync.sync_labels(table=table)

    assert result.shards == {s: "synced" for s in range(SYNC_SHARDS)}
    assert result.applied == 5 * SYNC_SHARDS
    assert Label.objects.count() == 2 * 5 * SYNC_SHARDS
    assert checkpoints() == {s: stamp(4) for s in range(SYNC_SHARDS)}


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_syncs_never_interleave_on_a_shard(table, monkeypatch):
    put(table, *[record(k, i) for s in range(SYNC_SHARDS) for i, k in enumerate(keys_in_shard(s, 4))])
    real_apply = sync.apply_records
    active: dict[int, int] = {}
    overlaps = []
    lock = threading.Lock()

    def slow_apply(records):
        shard = shard_for(records[0].key) if records else -1
        with lock:
            active[shard] = active.get(shard, 0) + 1
            if active[shard] > 1:
                overlaps.append(shard)
        threading.Event().wait(0.05)
        try:
            return real_apply(records)
        finally:
            with lock:
                active[shard] -= 1

    monkeypatch.setattr(sync, "apply_records", slow_apply)
    results = []
    start = threading.Barrier(2)

    def worker():
        start.wait()
        try:
            results.append(sync.sync_labels(table=table))
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert overlaps == []  # no shard was ever applied by both workers at once
    assert len(results) == 2
    # Every shard was synced by at least one worker (one after the other is fine).
    assert {s for r in results for s, state in r.shards.items() if state == "synced"} == set(range(SYNC_SHARDS))
    assert Label.objects.count() == 2 * 4 * SYNC_SHARDS
    assert sum(r.applied for r in results) == 4 * SYNC_SHARDS


def throttle_first(client, n: int, operation="Query", code="ProvisionedThroughputExceededException", status=400):
    """A before-send hook answering the first ``n`` calls with a throttling (or ``code``)
    error."""
    calls = {"throttled": 0}

    def hook(request, **kwargs):
        if calls["throttled"] >= n:
            return None
        calls["throttled"] += 1
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"slow down"}' % code.encode()
        response = AWSResponse(request.url, status, {"x-amzn-ErrorType": code}, None)
        response._content = body
        return response

    client.meta.events.register_first(f"before-send.dynamodb.{operation}", hook)
    return calls


@pytest.mark.django_db
def test_throttled_queries_are_retried_with_backoff(table):
    put(table, *[record(k, i) for i, k in enumerate(keys_in_shard(0, 3))])
    calls = throttle_first(table.meta.client, 4)

    result = sync.sync_shard(0, table=table)

    assert calls["throttled"] == 4
    assert result.applied == 3


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "status"), [("InternalServerError", 500), ("RequestLimitExceeded", 400),
                                              ("ServiceUnavailable", 503)])
def test_server_errors_past_botocores_own_retries_are_retried_too(table, code, status):
    put(table, *[record(k, i) for i, k in enumerate(keys_in_shard(0, 3))])
    calls = throttle_first(table.meta.client, 6, code=code, status=status)  # botocore itself tries 4 times

    result = sync.sync_shard(0, table=table)

    assert calls["throttled"] == 6
    assert result.applied == 3


@pytest.mark.django_db
def test_persistent_throttling_raises_for_the_task_to_retry_and_keeps_the_checkpoint(table):
    put(table, *[record(k, i) for i, k in enumerate(keys_in_shard(0, 3))])
    throttle_first(table.meta.client, 1000)

    with pytest.raises(table_access.SyncThrottled):
        sync.sync_shard(0, table=table)

    assert checkpoints()[0] == ""
    assert SyncCheckpoint.objects.get(shard=0).lease_token == ""  # released for the retry
    assert Photo.objects.count() == 0


@pytest.mark.django_db
def test_a_sync_killed_mid_batch_then_rerun_loses_and_duplicates_nothing(table, monkeypatch):
    monkeypatch.setattr(sync, "PAGE_SIZE", 4)
    keys = keys_in_shard(1, 10)
    put(table, *[record(k, i) for i, k in enumerate(keys)])
    real_apply = sync.apply_records
    pages = {"n": 0}

    def dying_apply(records):
        pages["n"] += 1
        applied = real_apply(records)
        if pages["n"] == 2:
            raise SystemExit("worker killed")  # after writing, before the page commits
        return applied

    monkeypatch.setattr(sync, "apply_records", dying_apply)
    with pytest.raises(SystemExit):
        sync.sync_shard(1, table=table, overlap_seconds=0)
    assert checkpoints()[1] == stamp(3)  # page 1 committed, page 2 rolled back
    assert Photo.objects.count() == 4

    monkeypatch.setattr(sync, "apply_records", real_apply)
    result = sync.sync_shard(1, table=table, overlap_seconds=0)

    assert result.applied == 6
    assert Photo.objects.count() == 10
    assert Label.objects.count() == 20  # each label exactly once
    assert AnalysisRecord.objects.count() == 10
    assert checkpoints()[1] == stamp(9)


@pytest.mark.django_db
def test_invalid_items_are_counted_and_skipped(table):
    keys = keys_in_shard(0, 2)
    put(table, record(keys[0], 1))
    bad = item_of(record(keys[1], 2))
    bad["labels"][0]["confidence"] = "very"
    table.put_item(Item=bad)

    result = sync.sync_shard(0, table=table)

    assert (result.applied, result.invalid) == (1, 1)
    assert checkpoints()[0] == stamp(1)


@pytest.mark.django_db
def test_sync_photo_gets_one_item(table):
    put(table, record("uploads/one.jpg", 5, labels=("Cat",)))
    photo = Photo.objects.create(image="uploads/one.jpg")

    result = sync.sync_photo(photo.id, table=table)

    assert result.applied == 1
    assert list(photo.labels.values_list("name", flat=True)) == ["Cat"]
    assert sync.sync_photo(Photo.objects.create(image="uploads/none.jpg").id, table=table) is None


@pytest.mark.django_db
def test_sync_photos_asks_again_for_unprocessed_keys(table):
    keys = [f"uploads/batch{i}.jpg" for i in range(150)]
    put(table, *[record(k, i) for i, k in enumerate(keys)])
    photo_ids = [Photo.objects.create(image=k).id for k in keys]
    client = table.meta.client
    real = client.batch_get_item
    rounds = []

    def stingy(RequestItems):
        # Serve at most 20 keys a call, like DynamoDB under pressure; the rest come back
        # as UnprocessedKeys.
        (name, request), = RequestItems.items()
        served, left = request["Keys"][:20], request["Keys"][20:]
        rounds.append(len(served))
        response = real(RequestItems={name: {**request, "Keys": served}})
        if left:
            response["UnprocessedKeys"] = {name: {**request, "Keys": left}}
        return response

    client.batch_get_item = stingy
    result = sync.sync_photos(photo_ids, table=table, sleep=lambda s: None)

    assert result.applied == 150
    assert Label.objects.count() == 300
    assert len(rounds) > 2


@pytest.mark.django_db(transaction=True)
def test_deleting_a_photo_removes_its_dynamodb_record(table, settings, monkeypatch):
    from django.contrib.auth import get_user_model

    from photos.services.erasure import photo_delete

    settings.PHOTOS_PIPELINE = "aws"
    settings.LABELS_TABLE_NAME = "labels"
    monkeypatch.setattr(aws, "labels_table", lambda: table)
    put(table, record("uploads/gone.jpg", 1))
    owner = get_user_model().objects.create_user("o", password="x")
    photo = Photo.objects.create(image="uploads/gone.jpg", owner=owner)

    assert photo_delete(photo_id=photo.id, actor=owner) is True

    assert "Item" not in table.get_item(Key={"pk": "IMG#uploads/gone.jpg", "sk": "ANALYSIS"})


def test_reconcile_scan_never_hangs_when_a_segment_fails():
    """One segment fails at once while the others have many pages to give: the error is
    raised promptly and no thread is left blocked on the full queue (it used to hang)."""
    import time as _time

    class Table:
        def scan(self, Segment, TotalSegments, Limit, ExclusiveStartKey=None):
            if Segment == 1:
                raise RuntimeError("segment 1: AccessDenied")
            n = (ExclusiveStartKey or {}).get("n", 0)
            return {"Items": [{"pk": f"IMG#{Segment}-{n}"}], "LastEvaluatedKey": {"n": n + 1}}

    started = _time.monotonic()
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="segment 1"):
        for _ in sync.scan_records(segments=4, table=Table(), page_size=1):
            _time.sleep(0.01)  # a slow consumer: the queue fills up

    assert _time.monotonic() - started < 10
    _time.sleep(0.5)
    assert threading.active_count() <= before


@pytest.mark.django_db
def test_unprocessed_keys_are_asked_for_a_bounded_number_of_times():
    """DynamoDB that keeps leaving keys unprocessed ends in SyncThrottled (the Celery task
    retries later), not in an endless loop."""
    Photo.objects.create(image="uploads/u/1.jpg", original_filename="1.jpg")
    calls = []

    class Client:
        def batch_get_item(self, RequestItems):
            calls.append(1)
            return {"Responses": {"t": []}, "UnprocessedKeys": RequestItems}

    class Table:
        name = "t"

        class meta:
            client = Client()

    with pytest.raises(table_access.SyncThrottled):
        sync.sync_photos(Photo.objects.values_list("id", flat=True), table=Table(), sleep=lambda s: None)
    assert len(calls) == table_access.RETRY_ATTEMPTS + 1


@pytest.mark.django_db
def test_every_sync_run_beats_for_the_stacks_heartbeat_alarm(table, settings, monkeypatch):
    """The stack alarms when Django has not synced for a while: it reads SyncRuns, which
    every run reports (RecordsSynced says how much it applied)."""
    from datetime import datetime, timedelta, timezone

    settings.PHOTOS_PIPELINE = "aws"
    settings.AWS_REGION = "us-east-1"
    monkeypatch.setattr(aws.sync, "labels_table", lambda: table)
    put(table, *[record(k, i) for i, k in enumerate(keys_in_shard(0, 3))])

    aws.AwsPipeline().sync()
    aws.AwsPipeline().sync()

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    now = datetime.now(timezone.utc)

    def total(name):
        points = cloudwatch.get_metric_statistics(
            Namespace="MediaPipeline", MetricName=name, Dimensions=[{"Name": "service", "Value": "django-sync"}],
            StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5), Period=600, Statistics=["Sum"])
        return sum(p["Sum"] for p in points["Datapoints"])

    assert (total("SyncRuns"), total("RecordsSynced")) == (2, 3)


@pytest.mark.django_db
def test_a_heartbeat_cloudwatch_refuses_never_fails_the_sync(table, settings, monkeypatch, caplog):
    settings.PHOTOS_PIPELINE = "aws"
    monkeypatch.setattr(aws.sync, "labels_table", lambda: table)

    class Refusing:
        def put_metric_data(self, **kwargs):
            raise RuntimeError("AccessDenied: cloudwatch:PutMetricData")

    monkeypatch.setattr(aws, "_cloudwatch", lambda region, endpoint: Refusing())

    assert aws.AwsPipeline().sync()["applied"] == 0
    assert "could not report the sync's heartbeat" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_tombstone_and_the_records_removal_are_one_call_that_fails_whole(table, settings, monkeypatch):
    """Not a PutItem then a DeleteItem (a failure between them left a tombstone beside a
    live record): one TransactWriteItems; when DynamoDB refuses it, nothing changed and
    the photo stays, to be deleted again."""
    from django.contrib.auth import get_user_model

    from photos.services.erasure import photo_delete

    settings.PHOTOS_PIPELINE = "aws"
    monkeypatch.setattr(aws, "labels_table", lambda: table)
    put(table, record("uploads/kept.jpg", 1))
    owner = get_user_model().objects.create_user("o", password="x")
    photo = Photo.objects.create(image="uploads/kept.jpg", owner=owner)
    calls = []
    table.meta.client.meta.events.register("before-parameter-build.dynamodb.*", lambda model, **kw: calls.append(model.name))

    def refuse(model, **kwargs):
        if model.name == "TransactWriteItems":
            raise RuntimeError("InternalServerError")

    table.meta.client.meta.events.register_first("before-call.dynamodb.TransactWriteItems", refuse)
    with pytest.raises(Exception):
        photo_delete(photo_id=photo.id, actor=owner)

    assert calls == ["TransactWriteItems"]
    assert Photo.objects.filter(id=photo.id).exists()
    assert "Item" in table.get_item(Key={"pk": "IMG#uploads/kept.jpg", "sk": "ANALYSIS"})
    assert "Item" not in table.get_item(Key={"pk": "IMG#uploads/kept.jpg", "sk": "ERASED"})
