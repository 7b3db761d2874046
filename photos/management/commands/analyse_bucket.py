"""Backfill: send the labeler every image in the bucket that has no record yet.

    manage.py analyse_bucket [--dry-run] [--start-after KEY] [--per-second N]

For objects that were in the bucket before the stack (or before a notification change),
or whose events were lost. Lists the upload prefix, asks the pipeline which keys have
neither a record nor an erasure tombstone, and sends those an S3-event-shaped message
(10 a call) to the backfill's own queue, at most ``--per-second`` a second: pace it to
what the backfill lane analyses (docs/aws.md, "Backfill"), so the backlog never outlives
the queue's 14 days. Progress goes to stderr; the last key handled is printed, and
``--start-after`` resumes from it after an interruption. ``--dry-run`` lists what would
be sent. Nothing is rewritten in the bucket.
"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from infra.resources import UPLOAD_PREFIX
from photos.pipelines import media_storage, pipeline

SEND_BATCH = 10


class Pacer:
    """At most ``per_second`` sends a second on average: each batch waits until the
    previous ones' share of time has passed (the clock and sleep are injectable)."""

    def __init__(self, per_second: float, *, clock=time.monotonic, sleep=time.sleep):
        self.interval, self.clock, self.sleep = 1 / per_second, clock, sleep
        self.next_at: float | None = None

    def take(self, n: int) -> None:
        now = self.clock()
        if self.next_at is not None and self.next_at > now:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + n * self.interval


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list what would be sent, send nothing")
        parser.add_argument("--start-after", default="", help="resume after this key (printed by an earlier run)")
        parser.add_argument("--per-second", type=float, default=2.0,
                            help="messages sent a second at most (default 2, what the default backfill lane "
                                 "analyses; raise it with BackfillMaximumConcurrency: docs/aws.md)")

    def handle(self, *args, dry_run, start_after, per_second, pacer=None, **options):
        if not pipeline().backfills or not media_storage().lists_objects:
            raise CommandError("analyse_bucket is for the AWS pipeline (PHOTOS_PIPELINE=aws, PHOTOS_STORAGE=s3).")
        if per_second <= 0:
            raise CommandError("--per-second must be above 0.")
        pacer = pacer or Pacer(per_second)
        listed = sent = 0
        last = start_after
        started = time.monotonic()
        for objects in media_storage().list_objects(UPLOAD_PREFIX, start_after=start_after):
            if not objects:
                continue
            todo_keys = set(pipeline().without_analysis([key for key, _, _ in objects]))
            todo = [(str(n), key, size, etag) for n, (key, size, etag) in enumerate(objects) if key in todo_keys]
            listed += len(objects)
            for i in range(0, len(todo), SEND_BATCH):
                batch = todo[i : i + SEND_BATCH]
                if dry_run:
                    for _, key, _, _ in batch:
                        self.stdout.write(f"would send {key}")
                    sent += len(batch)
                else:
                    pacer.take(len(batch))
                    ok = pipeline().backfill(batch)
                    failed = [key for ident, key, _, _ in batch if ident not in ok]
                    if failed:
                        raise CommandError(f"SQS refused {len(failed)} message(s), first {failed[0]!r}; "
                                           f"resume with --start-after {last!r}")
                    sent += len(ok)
            last = objects[-1][0]
            rate = listed / max(1e-6, time.monotonic() - started)
            sys.stderr.write(f"\rlisted {listed} objects ({rate:.0f}/s), {'would send' if dry_run else 'sent'} {sent}")
            sys.stderr.flush()
        sys.stderr.write("\n")
        self.stdout.write(f"{listed} objects listed, {sent} {'would be sent' if dry_run else 'sent'} to the labeler; "
                          f"last key {last!r}")
