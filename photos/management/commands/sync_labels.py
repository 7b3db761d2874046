"""Run the DynamoDB -> Django sync now (once, or every N seconds with --every)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from photos.pipelines import sync
from photos.pipelines.dynamodb import SyncThrottled


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=0, help="repeat every N seconds until interrupted")

    def handle(self, *args, every, **options):
        while True:
            try:
                result = sync.sync_labels()
                if result.applied or result.invalid or every == 0:
                    self.stdout.write(
                        f"sync: {result.applied} applied, {result.stale} already current, {result.invalid} invalid, "
                        f"shards {result.shards}"
                    )
            except SyncThrottled as exc:
                self.stderr.write(f"sync throttled, will retry: {exc}")
            if not every:
                return
            time.sleep(every)
