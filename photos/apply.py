"""apply_records: LabelRecords into the models, set-based.

The curation rules are applied by a handful of SQL statements per batch, not by model
instances: rows are loaded into temporary staging tables (COPY on PostgreSQL, one
executemany elsewhere) and merged with INSERT ... ON CONFLICT / UPDATE ... FROM. That
keeps the query count constant and the Python work per record small; the ORM version
of the same logic applied ~400 records/s into PostgreSQL, this one is measured by
`make bench-sync`. Its callers import it from here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timezone as dt_timezone
from pathlib import PurePosixPath
from typing import Iterable, Sequence

from django.db import connection, transaction
from django.utils import timezone

from infra.functions.labeler.record import (STATUS_FAILED, STATUS_LABELED, STATUS_SKIPPED, WAITING_FOR_STREAM,
                                            LabelRecord)

from .models import CONTENT_TYPES, KEY_FORMATS, VIDEO_FORMATS, AnalysisRecord, AuditEvent, DetectedText, Label, LabelTaxonomy, ModerationLabel, Photo
from .renditions import enqueue_stream, forget_timelines, make_stills
from .selectors.search import remember_text_words
from .selectors.labels import thresholds

logger = logging.getLogger(__name__)

RECORD_STATUS = {
    STATUS_LABELED: Photo.Status.LABELED,
    STATUS_FAILED: Photo.Status.FAILED,
    STATUS_SKIPPED: Photo.Status.SKIPPED,
}
# Rounding noise between two runs of the same model must not re-flag a cleared photo.
STRONGER_BY = 1.0

L = Label._meta.db_table
P = Photo._meta.db_table
M = ModerationLabel._meta.db_table
T = DetectedText._meta.db_table
R = AnalysisRecord._meta.db_table
X = LabelTaxonomy._meta.db_table

# Staging tables, per connection, emptied at the start of every apply. The labels one
# is keyed so the "gone from the latest analysis" anti-joins are index lookups.
STAGING_KEYS = {"apply_labels": "photo_id, name", "apply_photos": "id"}
STAGING = {
    "apply_labels": [("photo_id", "bigint"), ("name", "varchar(100)"), ("confidence", "double precision"),
                     ("parents", "jsonb"), ("categories", "jsonb"), ("aliases", "jsonb"), ("instances", "jsonb")],
    "apply_photos": [("id", "bigint"), ("status", "varchar(16)"), ("status_reason", "text"),
                     ("analyzed_at", "timestamptz"), ("engine", "varchar(20)"), ("model_versions", "jsonb"),
                     ("record_updated_at", "varchar(32)"), ("etag", "varchar(200)"),
                     ("moderation_state", "varchar(16)"), ("flagged_at", "timestamptz")],
    "apply_records": [("photo_id", "bigint"), ("key", "varchar(1024)"), ("updated_at", "varchar(32)"),
                      ("status", "varchar(16)"), ("engine", "varchar(20)"), ("payload", "jsonb")],
}


@dataclass(frozen=True)
class ApplyResult:
    applied: int
    stale: int
    created_photos: int


def _parse_time(stamp: str) -> datetime | None:
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt_timezone.utc)
    except ValueError:
        return None


def format_from_key(key: str) -> str:
    return KEY_FORMATS.get(PurePosixPath(key).suffix.lower().lstrip("."), "")


JOIN_FRAGMENT = 4  # a word this short beside another may be a piece the text reader split off


def joined_words(text) -> list:
    """Words the text reader split ("CONTI NUE" for CONTINUE), joined, as extra WORD
    detections (search and suggestions read WORDs; pages show LINEs, so nothing shown
    changes): in each line, every two neighbouring all-letter words of which one is at
    most JOIN_FRAGMENT letters, with the line's box and confidence. A word the photo
    already has is not added twice."""
    have = {t.text.upper() for t in text if t.type == "WORD"}
    joined = []
    for line in (t for t in text if t.type == "LINE"):
        words = line.text.split()
        for left, right in zip(words, words[1:]):
            word = left + right
            if (left.isalpha() and right.isalpha() and min(len(left), len(right)) <= JOIN_FRAGMENT
                    and word.upper() not in have):
                have.add(word.upper())
                joined.append(replace(line, text=word, type="WORD"))
    return joined


def _box(box) -> dict:
    return {"left": box.left, "top": box.top, "width": box.width, "height": box.height}


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


_names_json: dict[tuple, str] = {}


def _names(values: tuple) -> str:
    """JSON for a tuple of label names; the same few parent/category lists recur on
    every record, so each is encoded once per process."""
    encoded = _names_json.get(values)
    if encoded is None:
        encoded = _dumps(list(values))
        if len(_names_json) < 10_000:
            _names_json[values] = encoded
    return encoded


@transaction.atomic
def apply_records(records: Iterable[LabelRecord]) -> ApplyResult:
    """Upsert LabelRecords into the models, in bulk and idempotently.

    Guarantees (DESIGN.md, "Curation rules"):
    - a constant number of queries per call, whatever the number of records;
    - applying the same records again changes nothing; a record not newer than the one
      already applied to its photo is ignored (late, duplicate or overlapping reads);
    - machine fields are updated, review state and editor edits never are;
      editor-added labels are untouched; a machine label gone from the latest analysis
      is deleted if pending, kept and marked missing if approved, left rejected if
      rejected (so it never comes back as pending);
    - a moderation label at or above the flag threshold flags the photo; a moderator's
      clearance holds unless a label is new or stronger than when it was cleared;
      removed photos stay removed;
    - a record whose key has no Photo creates one (an image put into the bucket directly).
    """
    latest: dict[str, LabelRecord] = {}
    for record in records:
        current = latest.get(record.key)
        if current is None or record.updated_at >= current.updated_at:
            latest[record.key] = record
    if not latest:
        return ApplyResult(0, 0, 0)

    fields = ("id", "image", "record_updated_at", "moderation_state", "cleared_moderation", "flagged_at", "etag")
    photos = {p.image.name: p for p in Photo.objects.select_for_update().filter(image__in=list(latest)).only(*fields)}
    missing = [key for key in latest if key not in photos]
    if missing:
        Photo.objects.bulk_create(
            [
                Photo(
                    image=key, original_filename=PurePosixPath(key).name[:255], size=latest[key].size,
                    etag=latest[key].etag, content_type=CONTENT_TYPES.get(format_from_key(key), ""),
                    kind=Photo.Kind.VIDEO if format_from_key(key) in VIDEO_FORMATS else Photo.Kind.PHOTO,
                )
                for key in missing
            ]
        )
        photos.update({p.image.name: p for p in Photo.objects.select_for_update().filter(image__in=missing).only(*fields)})
        # A video put into the bucket outside the app whose record says it waits for its
        # H.264 stream (Rekognition Video cannot read it: infra/functions/labeler/video.py
        # note_waiting): asked for now. The rest of a backfill's videos get theirs from the
        # renditions sweep, 100 at a time, so a backfill never floods the worker's queue.
        new_videos = [photos[key].id for key in missing
                      if latest[key].error is not None and latest[key].error.code == WAITING_FOR_STREAM]
        if new_videos:
            transaction.on_commit(lambda: [enqueue_stream(photo_id) for photo_id in new_videos])

    fresh = {
        key: record
        for key, record in latest.items()
        # Strictly newer: the same record read twice (sync overlap windows) is a no-op.
        if not photos[key].record_updated_at or record.updated_at > photos[key].record_updated_at
    }
    stale = len(latest) - len(fresh)
    if not fresh:
        return ApplyResult(0, stale, len(missing))

    limits = thresholds()
    now = timezone.now()
    newly_flagged: list[tuple[Photo, str, dict]] = []
    label_rows, moderation_rows, text_rows, photo_rows, record_rows = [], [], [], [], []
    labeled_ids = []
    # Photos that had a record applied before: only they can hold machine labels,
    # moderation labels and text from an earlier analysis to reconcile against.
    reanalysed_ids = []
    for key, record in fresh.items():
        photo = photos[key]
        if record.status == STATUS_LABELED:
            labeled_ids.append(photo.id)
            if photo.record_updated_at:
                reanalysed_ids.append(photo.id)
            seen = set()
            for item in record.labels:
                if item.name in seen:
                    continue
                seen.add(item.name)
                label_rows.append((
                    photo.id, item.name[:100], item.confidence, _names(item.parents),
                    _names(item.categories), _names(item.aliases),
                    _dumps([{"box": _box(i.box), "confidence": i.confidence} for i in item.instances])
                    if item.instances else "[]",
                ))
            moderation_rows.extend(
                (photo.id, m.name[:100], m.parent[:100], m.level, m.confidence)
                for m in {m.name: m for m in record.moderation_labels}.values()
            )
            text_rows.extend((photo.id, t.text[:500], t.type, t.confidence, _dumps(_box(t.box)))
                             for t in (*record.text, *joined_words(record.text)))
            before = photo.moderation_state
            flagging = _moderate(photo, record, limits, now)
            if photo.moderation_state != before:
                newly_flagged.append((photo, before, flagging))
        reason = f"{record.error.code}: {record.error.message}"[:2000] if record.error else ""
        photo_rows.append((
            photo.id, RECORD_STATUS[record.status], reason, _parse_time(record.analyzed_at) or now, record.engine,
            _dumps(dict(record.model_versions)), record.updated_at, record.etag or photo.etag,
            photo.moderation_state, photo.flagged_at,
        ))
        record_rows.append((photo.id, key[:1024], record.updated_at, record.status, record.engine, _dumps(record.to_dict())))

    with connection.cursor() as cursor:
        _prepare_staging(cursor)
        _load(cursor, "apply_labels", label_rows)
        _load(cursor, "apply_photos", photo_rows)
        _load(cursor, "apply_records", record_rows)
        stamp = connection.ops.adapt_datetimefield_value(now)
        if labeled_ids:
            cursor.execute(
                f"""
                INSERT INTO {L} (photo_id, name, confidence, parents, categories, aliases, instances,
                                 source, review_state, missing_from_latest, created_at, updated_at)
                SELECT photo_id, name, confidence, parents, categories, aliases, instances,
                       %s, %s, %s, %s, %s
                FROM apply_labels WHERE true
                ON CONFLICT (photo_id, name) DO UPDATE SET
                    confidence = excluded.confidence, parents = excluded.parents,
                    categories = excluded.categories, aliases = excluded.aliases,
                    instances = excluded.instances, missing_from_latest = %s, updated_at = excluded.updated_at
                WHERE {L}.source = %s AND (
                    {L}.missing_from_latest
                    OR {L}.confidence IS DISTINCT FROM excluded.confidence
                    OR {L}.parents IS DISTINCT FROM excluded.parents
                    OR {L}.categories IS DISTINCT FROM excluded.categories
                    OR {L}.aliases IS DISTINCT FROM excluded.aliases
                    OR {L}.instances IS DISTINCT FROM excluded.instances)
                """,
                [Label.Source.MACHINE, Label.Review.PENDING, False, stamp, stamp, False, Label.Source.MACHINE],
            )
            # Keep the taxonomy (name -> parents, aliases) current: parent and alias searches read it.
            # A record without aliases (an engine that reports none) never wipes the known ones.
            if connection.vendor == "postgresql":
                pick = ("SELECT DISTINCT ON (name) name, parents, aliases, %s FROM apply_labels "
                        "ORDER BY name, jsonb_array_length(aliases) DESC")
                empty = "'[]'::jsonb"
            else:
                pick = "SELECT name, MAX(parents), MAX(aliases), %s FROM apply_labels GROUP BY name"
                empty = "'[]'"
            cursor.execute(
                f"""
                INSERT INTO {X} (name, parents, aliases, updated_at) {pick}
                ON CONFLICT (name) DO UPDATE SET parents = excluded.parents,
                    aliases = COALESCE(NULLIF(excluded.aliases, {empty}), {X}.aliases),
                    updated_at = excluded.updated_at
                WHERE {X}.parents IS DISTINCT FROM excluded.parents
                    OR (excluded.aliases <> {empty} AND {X}.aliases IS DISTINCT FROM excluded.aliases)
                """,
                [stamp],
            )
        if reanalysed_ids:
            ids = _in(reanalysed_ids)
            gone = f"NOT EXISTS (SELECT 1 FROM apply_labels s WHERE s.photo_id = {L}.photo_id AND s.name = {L}.name)"
            cursor.execute(
                f"DELETE FROM {L} WHERE photo_id IN ({ids}) AND source = %s AND review_state = %s AND {gone}",
                [*reanalysed_ids, Label.Source.MACHINE, Label.Review.PENDING],
            )
            cursor.execute(
                f"UPDATE {L} SET missing_from_latest = %s, updated_at = %s WHERE photo_id IN ({ids}) "
                f"AND source = %s AND review_state = %s AND NOT missing_from_latest AND {gone}",
                [True, stamp, *reanalysed_ids, Label.Source.MACHINE, Label.Review.APPROVED],
            )
            cursor.execute(f"DELETE FROM {M} WHERE photo_id IN ({ids})", reanalysed_ids)
            cursor.execute(f"DELETE FROM {T} WHERE photo_id IN ({ids})", reanalysed_ids)
        if labeled_ids:
            _load(cursor, M, moderation_rows, columns=("photo_id", "name", "parent", "level", "confidence"))
            _load(cursor, T, text_rows, columns=("photo_id", "text", "type", "confidence", "box"))
            found = [(text, confidence) for _, text, kind, confidence, _ in text_rows if kind == "WORD"]
            transaction.on_commit(lambda: remember_text_words(found))
        cursor.execute(
            f"""
            UPDATE {P} SET status = s.status, status_reason = s.status_reason, analyzed_at = s.analyzed_at,
                engine = s.engine, model_versions = s.model_versions, record_updated_at = s.record_updated_at,
                etag = s.etag, moderation_state = s.moderation_state, flagged_at = s.flagged_at, updated_at = %s
            FROM apply_photos s WHERE {P}.id = s.id
            """,
            [stamp],
        )
        cursor.execute(
            f"""
            INSERT INTO {R} (photo_id, key, updated_at, status, engine, payload, received_at)
            SELECT photo_id, key, updated_at, status, engine, payload, %s FROM apply_records WHERE true
            ON CONFLICT (key, updated_at) DO NOTHING
            """,
            [stamp],
        )
    if newly_flagged:
        # Automatic flags are decisions too: on the record, by "system" (no actor).
        AuditEvent.objects.bulk_create(
            AuditEvent(photo_id=photo.id, action=AuditEvent.Action.FLAG, actor=None, at=now,
                       before={"moderation_state": before},
                       after={"moderation_state": photo.moderation_state, "moderation_labels": flagging})
            for photo, before, flagging in newly_flagged
        )
        # A flagged video's moderators see stills of its flagged moments: the local worker
        # keeps them as it analyses; a timeline from Rekognition Video comes without.
        videos = [photo.id for photo, _, _ in newly_flagged if format_from_key(photo.image.name) in VIDEO_FORMATS]
        if videos:
            transaction.on_commit(lambda: _ask_for_stills(videos))
    # A video's timeline came with its record (written beside it by the AWS collector):
    # the pages must not keep showing that there was none.
    forget_timelines([key for key in fresh if format_from_key(key) in VIDEO_FORMATS])
    return ApplyResult(applied=len(fresh), stale=stale, created_photos=len(missing))


def _ask_for_stills(photo_ids: list[int]) -> None:
    for photo_id in photo_ids:
        try:
            make_stills.delay(photo_id)
        except Exception as exc:  # kombu's errors: the decide page still lists the moments' times
            logger.warning("could not ask for the stills of video %s: %s", photo_id, exc)


def _category(name: str, parents: dict[str, str]) -> str:
    """The level-1 moderation category of a label (it names its parent chain)."""
    seen = set()
    while parents.get(name) and name not in seen:
        seen.add(name)
        name = parents[name]
    return name


def _moderate(photo: Photo, record: LabelRecord, limits: dict, now) -> dict[str, float]:
    """Flag the photo if a moderation label reaches its category's threshold (or the
    general one); returns the labels that did."""
    parents = {m.name: m.parent for m in record.moderation_labels}
    categories = limits.get("categories") or {}
    flagging = {
        m.name: m.confidence
        for m in record.moderation_labels
        if m.confidence >= float(categories.get(_category(m.name, parents), limits["flag"]))
    }
    if not flagging or photo.moderation_state not in (Photo.Moderation.NONE, Photo.Moderation.CLEARED):
        return flagging
    if photo.moderation_state == Photo.Moderation.CLEARED:
        seen = photo.cleared_moderation or {}
        if all(name in seen and confidence <= seen[name] + STRONGER_BY for name, confidence in flagging.items()):
            return flagging
    photo.moderation_state = Photo.Moderation.FLAGGED
    photo.flagged_at = now
    return flagging


def _in(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def _prepare_staging(cursor) -> None:
    postgres = connection.vendor == "postgresql"
    for table, columns in STAGING.items():
        key = f", PRIMARY KEY ({STAGING_KEYS[table]})" if table in STAGING_KEYS else ""
        if postgres:
            spec = ", ".join(f"{name} {kind}" for name, kind in columns)
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({spec}{key}) ON COMMIT DELETE ROWS")
        else:
            spec = ", ".join(name for name, _ in columns)
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({spec}{key})")
        # Also on PostgreSQL: an earlier apply in the same transaction left rows behind.
        cursor.execute(f"DELETE FROM {table}")


def _load(cursor, table: str, rows: list[tuple], *, columns: Sequence[str] | None = None) -> None:
    """Bulk-load rows: COPY on PostgreSQL, one executemany elsewhere."""
    if not rows:
        return
    columns = columns or [name for name, _ in STAGING[table]]
    if connection.vendor == "postgresql":
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        adapted = [tuple(connection.ops.adapt_datetimefield_value(v) if isinstance(v, datetime) else v for v in row)
                   for row in rows]
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_in(columns)})", adapted)
