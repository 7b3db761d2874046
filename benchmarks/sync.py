"""Benchmark: the sync's apply path and the Lambda handler's concurrency.

    make bench-sync          # or: .venv/bin/python -m benchmarks.sync

1. records/s applied into PostgreSQL from DynamoDB items of 10 labels each (parsed with
   record_of, Decimals and all): apply_records in pages of sync.PAGE_SIZE,
   beside a naive per-record loop of update_or_create calls, in the same run, on a
   dedicated database (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/mediaapp_bench,
   created if missing);
2. the whole sync (photos.pipelines.sync.sync_labels) from a moto DynamoDB table: one
   run over what 30 s of uploads at 100 records/s leave on the sync index (3,000 records,
   the labeler's own item format), Query pages, parsing and apply, as beat runs it every
   SYNC_INTERVAL_SECONDS; it keeps up when a run takes less than the interval;
3. the handler's per-image latency with the three Rekognition calls stubbed at a fixed
   latency, through the real handler and a moto DynamoDB table: concurrent (as shipped)
   beside sequential (the same calls forced one at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from benchmarks import django_env

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mediaapp_bench"
# Powertools reads these when the handler is imported: quiet logs, no EMF lines on stdout.
django_env.start(os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB), POWERTOOLS_LOG_LEVEL="WARNING",
                 POWERTOOLS_METRICS_DISABLED="true", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                 AWS_DEFAULT_REGION="us-east-1", LABELS_TABLE_NAME="bench")

# Django is set up above: the app's modules import from here on.
import boto3  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from moto import mock_aws  # noqa: E402

from infra import resources  # noqa: E402
from infra.functions.labeler import handler  # noqa: E402
from infra.functions.labeler.record import Box, Instance, Label, LabelRecord, ModerationLabel, TextDetection  # noqa: E402
from infra.functions.labeler.table import item_of, record_of, shard_for  # noqa: E402
from infra.local_aws import LambdaContext  # noqa: E402
from photos import models  # noqa: E402
from photos.apply import apply_records  # noqa: E402
from photos.pipelines import sync  # noqa: E402
from tests.responses import LABELS_RESPONSE, MODERATION_RESPONSE, TEXT_RESPONSE  # noqa: E402


def make_items(n: int, prefix: str, stamp: str) -> list[dict]:
    names = ["Dog", "Animal", "Pet", "Mammal", "Grass", "Plant", "Outdoors", "Nature", "Person", "Face"]
    items = []
    for i in range(n):
        record = LabelRecord(
            bucket="media", key=f"uploads/{prefix}/{i}.jpg", etag=f'"{i:032x}"', size=100_000 + i,
            status="LABELED", engine="rekognition",
            labels=tuple(Label(name=name, confidence=50.0 + (i + k) % 50, parents=("Animal",) if k < 4 else (),
                               instances=(Instance(Box(0.1, 0.2, 0.3, 0.4), 90.0),) if k == 0 else ())
                         for k, name in enumerate(names)),
            moderation_labels=(ModerationLabel(name="Swimwear or Underwear", confidence=30.0),),
            text=(TextDetection(text="SALE", type="LINE", confidence=95.0, box=Box(0.1, 0.1, 0.2, 0.05)),),
            model_versions={"labels": "3.0", "moderation": "7.0", "text": "3.0"},
            analyzed_at=stamp, updated_at=stamp,
        )
        items.append(item_of(record))
    return items


def precreate_photos(items: list[dict]) -> None:
    """Photos exist before their first record arrives: the upload form made them."""
    models.Photo.objects.bulk_create([models.Photo(image=item["key"], original_filename="x.jpg") for item in items], batch_size=1000)


def bulk_apply(items: list[dict], page: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(items), page):
        apply_records([record_of(i) for i in items[start : start + page]])
    return time.perf_counter() - started


def parallel_apply(items: list[dict], page: int, workers: int) -> float:
    """What sync_labels does with SYNC_PARALLEL_SHARDS workers: each thread applies its
    own shard's pages on its own database connection."""
    shards: dict[int, list[dict]] = {}
    for item in items:
        shards.setdefault(shard_for(item["key"]) % workers, []).append(item)

    def run(part: list[dict]) -> None:
        try:
            for start in range(0, len(part), page):
                apply_records([record_of(i) for i in part[start : start + page]])
        finally:
            connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, shards.values()))
    return time.perf_counter() - started


def naive_apply(items: list[dict]) -> float:
    started = time.perf_counter()
    for item in items:
        record = record_of(item)
        with transaction.atomic():
            photo, _ = models.Photo.objects.update_or_create(
                image=record.key, defaults={"status": "labeled", "engine": record.engine, "etag": record.etag,
                                            "record_updated_at": record.updated_at})
            for label in record.labels:
                models.Label.objects.update_or_create(
                    photo=photo, name=label.name,
                    defaults={"confidence": label.confidence, "parents": list(label.parents),
                              "instances": [{"box": vars(i.box), "confidence": i.confidence} for i in label.instances]})
    return time.perf_counter() - started


def bench_apply(bulk_n: int, naive_n: int, rounds: int) -> None:
    print(f"\n== apply into {connection.vendor} ({connection.settings_dict['NAME']}), items of 10 labels")
    run = time.strftime("%H%M%S")
    bulk_rates, naive_rates, update_rates, parallel_rates = [], [], [], []
    for r in range(rounds):
        stamp = f"2026-11-22T08:00:{r:02d}.000000Z"
        new_items = make_items(bulk_n, f"bulk-{run}-{r}", stamp)
        precreate_photos(new_items)
        bulk_rates.append(bulk_n / bulk_apply(new_items, sync.PAGE_SIZE))
        # Re-analysis: the same keys again, newer records (updates, not inserts).
        newer = make_items(bulk_n, f"bulk-{run}-{r}", stamp.replace("08:00", "08:30"))
        update_rates.append(bulk_n / bulk_apply(newer, sync.PAGE_SIZE))
        parallel_items = make_items(bulk_n, f"par-{run}-{r}", stamp)
        precreate_photos(parallel_items)
        parallel_rates.append(bulk_n / parallel_apply(parallel_items, sync.PAGE_SIZE, settings.SYNC_PARALLEL_SHARDS))
        naive_items = make_items(naive_n, f"naive-{run}-{r}", stamp)
        precreate_photos(naive_items)
        naive_rates.append(naive_n / naive_apply(naive_items))
    bulk, update, naive, parallel = (statistics.median(x) for x in (bulk_rates, update_rates, naive_rates, parallel_rates))
    print(f"bulk apply_records, first analysis: {bulk:8.0f} records/s  (median of {rounds}, {bulk_n} records each)")
    print(f"bulk apply_records, re-analysis:    {update:8.0f} records/s")
    print(f"bulk, {settings.SYNC_PARALLEL_SHARDS} shards in parallel:     {parallel:8.0f} records/s")
    print(f"naive update_or_create loop:        {naive:8.0f} records/s  ({naive_n} records each)")
    print(f"ratio bulk / naive:                 {bulk / naive:8.1f}x (one worker), {parallel / naive:.1f}x (parallel shards)")
    models.Photo.objects.filter(image__contains=f"-{run}-").delete()


class TimedTable:
    """The table, with the time its Query calls take added up (what DynamoDB, here moto,
    spends answering, apart from the sync's own work)."""

    def __init__(self, table):
        self.table, self.query_seconds, self.queries = table, 0.0, 0

    def query(self, **kwargs):
        started = time.perf_counter()
        try:
            return self.table.query(**kwargs)
        finally:
            self.query_seconds += time.perf_counter() - started
            self.queries += 1

    def __getattr__(self, name):
        return getattr(self.table, name)


def bench_sync(records: int, rounds: int) -> None:
    """records/s through sync_labels from moto's DynamoDB into this database, and the
    same without the time moto takes to answer its Query calls."""
    whole, own, queries = [], [], []
    with mock_aws():
        table = boto3.resource("dynamodb").create_table(**resources.table_definition("bench-sync"))
        for r in range(rounds):
            stamp = time.strftime("%H%M%S")
            items = make_items(records, f"sync-{stamp}-{r}", f"2026-11-22T09:{r:02d}:00.000000Z")
            with table.batch_writer() as writer:
                for item in items:
                    writer.put_item(Item=item)
            precreate_photos(items)
            models.SyncCheckpoint.objects.all().delete()  # every shard reads from its start: all of this round's records
            timed = TimedTable(table)
            started = time.perf_counter()
            result = sync.sync_labels(table=timed, overlap_seconds=0, parallel=1)
            elapsed = time.perf_counter() - started
            assert result.applied >= records, result
            whole.append(result.applied / elapsed)
            own.append(result.applied / (elapsed - timed.query_seconds))
            queries.append(timed.query_seconds / timed.queries)
            with table.batch_writer() as writer:  # the next round reads only its own records
                for item in items:
                    writer.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
            models.Photo.objects.filter(image__contains=f"sync-{stamp}-{r}").delete()
    interval = settings.SYNC_INTERVAL_SECONDS
    print(f"\n== the whole sync from DynamoDB (moto) into {connection.vendor}, {records} records a run "
          f"(30 s at 100/s), {rounds} runs, one shard at a time")
    print(f"end to end:              median {statistics.median(whole):6.0f} records/s "
          f"(moto answers a {sync.PAGE_SIZE}-item Query in {statistics.median(queries) * 1000:.0f} ms)")
    print(f"the sync's own work:     median {statistics.median(own):6.0f} records/s "
          f"(parse + apply, without DynamoDB's answer time)")
    per_page = sync.PAGE_SIZE / statistics.median(own)
    real = sync.PAGE_SIZE / (per_page + 0.05)
    print(f"with a 50 ms Query page: {real:6.0f} records/s; keeps up while a run of {interval:.0f} s of arrivals "
          f"finishes within {interval:.0f} s: {real / 100:.1f}x the 100 records/s target")


class LatentRekognition:
    """Service-model-valid canned responses after a fixed latency per call."""

    def __init__(self, latency: float, sequential: bool):
        self.latency = latency
        self.lock = threading.Lock() if sequential else None
        self.responses = {"labels": LABELS_RESPONSE, "moderation": MODERATION_RESPONSE, "text": TEXT_RESPONSE}

    def _call(self, name):
        if self.lock:
            with self.lock:
                time.sleep(self.latency)
        else:
            time.sleep(self.latency)
        return self.responses[name]

    def detect_labels(self, **kwargs):
        return self._call("labels")

    def detect_moderation_labels(self, **kwargs):
        return self._call("moderation")

    def detect_text(self, **kwargs):
        return self._call("text")


def bench_handler(latency: float, images: int) -> None:
    with mock_aws():
        table = boto3.resource("dynamodb").create_table(**resources.table_definition("bench"))
        handler.TABLE = table

        def event(key):
            body = {"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2026-11-22T08:00:00.000Z",
                                 "s3": {"bucket": {"name": "media"}, "object": {"key": key, "size": 1, "eTag": "e", "sequencer": "0A"}}}]}
            return {"Records": [{"messageId": str(uuid.uuid4()), "body": json.dumps(body)}]}

        timings = {"concurrent": [], "sequential": []}
        for i in range(images):
            for mode in ("concurrent", "sequential"):  # alternated, side by side
                handler.REKOGNITION = LatentRekognition(latency, sequential=(mode == "sequential"))
                started = time.perf_counter()
                result = handler.handler(event(f"uploads/{mode}/{i}.jpg"), LambdaContext())
                timings[mode].append(time.perf_counter() - started)
                assert result == {"batchItemFailures": []}
    conc, seq = statistics.median(timings["concurrent"]), statistics.median(timings["sequential"])
    print(f"\n== labeler handler, Rekognition stubbed at {latency * 1000:.0f} ms a call, {images} images each")
    print(f"concurrent calls: median {conc * 1000:6.0f} ms per image")
    print(f"sequential calls: median {seq * 1000:6.0f} ms per image")
    print(f"speed-up:         {seq / conc:6.2f}x")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--naive-records", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sync-records", type=int, default=3000, help="records a sync run reads (30 s at 100/s)")
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args(argv)
    bench_apply(args.records, args.naive_records, args.rounds)
    bench_sync(args.sync_records, args.rounds)
    bench_handler(args.latency, args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
