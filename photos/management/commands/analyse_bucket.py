"""Backfill: send the labeler every image in the bucket that has no record yet.

    manage.py analyse_bucket [--dry-run] [--start-after KEY]

For objects that were in the bucket before the stack (or before a notification change),
or whose events were lost. Lists the upload prefix, asks DynamoDB which keys have a
record or an erasure tombstone (BatchGetItem, 50 keys a call), and sends the others an
S3-event-shaped message (10 a call). Progress goes to stderr; the last key handled is
printed, and ``--start-after`` resumes from it after an interruption. ``--dry-run``
lists what would be sent. Nothing is rewritten in the bucket.
"""

from __future__ import annotations

import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from infra.functions.labeler.record import SORT_KEY, TOMBSTONE_SORT_KEY
from infra.resources import UPLOAD_PREFIX
from photos import sync
from photos.pipelines import pipeline

BATCH_GET = 50


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list what would be sent, send nothing")
        parser.add_argument("--start-after", default="", help="resume after this key (printed by an earlier run)")

    def handle(self, *args, dry_run, start_after, **options):
        if not pipeline().backfills or settings.PHOTOS_STORAGE != "s3":
            raise CommandError("analyse_bucket is for the AWS pipeline (PHOTOS_PIPELINE=aws, PHOTOS_STORAGE=s3).")
        from django.core.files.storage import default_storage

        client = default_storage.connection.meta.client
        table = sync.dynamodb_table()
        listed = sent = 0
        last = start_after
        started = time.monotonic()
        paginator = client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Prefix=UPLOAD_PREFIX,
                                   **({"StartAfter": start_after} if start_after else {}))
        for page in pages:
            objects = [(o["Key"], o.get("Size", 0), o.get("ETag", "").strip('"')) for o in page.get("Contents", [])]
            for start in range(0, len(objects), BATCH_GET):
                chunk = objects[start : start + BATCH_GET]
                known = self._known(table, [key for key, _, _ in chunk])
                todo = [(str(n), key, size, etag) for n, (key, size, etag) in enumerate(chunk) if key not in known]
                listed += len(chunk)
                for i in range(0, len(todo), 10):
                    batch = todo[i : i + 10]
                    if dry_run:
                        for _, key, _, _ in batch:
                            self.stdout.write(f"would send {key}")
                        sent += len(batch)
                    else:
                        ok = pipeline().backfill(batch)
                        failed = [key for ident, key, _, _ in batch if ident not in ok]
                        if failed:
                            raise CommandError(f"SQS refused {len(failed)} message(s), first {failed[0]!r}; "
                                               f"resume with --start-after {last!r}")
                        sent += len(ok)
                last = chunk[-1][0]
                rate = listed / max(1e-6, time.monotonic() - started)
                sys.stderr.write(f"\rlisted {listed} objects ({rate:.0f}/s), {'would send' if dry_run else 'sent'} {sent}")
                sys.stderr.flush()
        sys.stderr.write("\n")
        self.stdout.write(f"{listed} objects listed, {sent} {'would be sent' if dry_run else 'sent'} to the labeler; "
                          f"last key {last!r}")

    def _known(self, table, keys: list[str]) -> set[str]:
        """Keys with a record or a tombstone (both count: an erased photo stays erased)."""
        request = {table.name: {"Keys": [{"pk": f"IMG#{k}", "sk": sk} for k in keys for sk in (SORT_KEY, TOMBSTONE_SORT_KEY)],
                                "ProjectionExpression": "pk"}}
        found: set[str] = set()
        for attempt in range(sync.RETRY_ATTEMPTS + 1):
            response = sync.with_backoff(lambda: table.meta.client.batch_get_item(RequestItems=request))
            found |= {item["pk"].removeprefix("IMG#") for item in response.get("Responses", {}).get(table.name, [])}
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(sync.RETRY_BASE_SECONDS * 2**attempt)
        raise sync.SyncThrottled("DynamoDB kept keys unprocessed; run again with --start-after")
