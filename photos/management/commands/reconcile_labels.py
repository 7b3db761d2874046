"""Compare (and with no --dry-run, repair) Django against every record in DynamoDB.

A parallel Scan reads the whole table; each page is compared with the photos it names
and, unless --dry-run, applied with apply_records (idempotent: records Django already
has are skipped). Progress goes to stderr, differences to stdout.
"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand

from photos.apply import apply_records
from photos.models import Label, Photo
from photos.pipelines import sync
from photos.pipelines.tombstones import photos_erased


def differences(records, photos: dict[str, Photo], labels: dict[int, set[str]]) -> list[str]:
    lines = []
    status_map = {"LABELED": "labeled", "FAILED": "failed", "SKIPPED": "skipped"}
    for record in records:
        photo = photos.get(record.key)
        if photo is None:
            lines.append(f"{record.key}: no photo in Django (record {record.status} at {record.updated_at})")
            continue
        if photo.record_updated_at and photo.record_updated_at > record.updated_at:
            continue  # Django already holds something newer (a local re-analysis)
        if photo.record_updated_at != record.updated_at:
            lines.append(f"{record.key}: Django has {photo.record_updated_at or 'nothing'}, DynamoDB has {record.updated_at}")
        if photo.status != status_map[record.status]:
            lines.append(f"{record.key}: status {photo.status} in Django, {record.status} in DynamoDB")
        if record.status == "LABELED":
            expected = {lb.name for lb in record.labels}
            missing = expected - labels.get(photo.id, set())
            if missing:
                lines.append(f"{record.key}: labels missing in Django: {', '.join(sorted(missing))}")
    return lines


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--segments", type=int, default=4, help="parallel Scan segments (threads)")
        parser.add_argument("--dry-run", action="store_true", help="list differences, change nothing")

    def handle(self, *args, segments, dry_run, **options):
        started = time.monotonic()
        scanned = invalid = applied = differing = 0
        for items in sync.scan_records(segments=segments):
            records, erased, bad = sync.parse_items(items)
            invalid += bad
            scanned += len(items)
            keys = [r.key for r in records]
            photos = {p.image.name: p for p in Photo.objects.filter(image__in=keys)}
            labels: dict[int, set[str]] = {}
            for photo_id, name in Label.objects.filter(photo__in=photos.values()).exclude(
                review_state=Label.Review.REJECTED
            ).values_list("photo_id", "name"):
                labels.setdefault(photo_id, set()).add(name)
            for line in differences(records, photos, labels):
                differing += 1
                self.stdout.write(line)
            if not dry_run and records:
                applied += apply_records(records).applied
            if erased and not dry_run:
                photos_erased(keys=erased)
            rate = scanned / max(1e-6, time.monotonic() - started)
            sys.stderr.write(f"\rscanned {scanned} records ({rate:.0f}/s), {differing} differences, {invalid} invalid")
            sys.stderr.flush()
        sys.stderr.write("\n")
        verb = "would apply" if dry_run else "applied"
        self.stdout.write(
            f"{scanned} records scanned, {differing} differences, {invalid} invalid; {verb} "
            f"{differing if dry_run else applied}."
        )
