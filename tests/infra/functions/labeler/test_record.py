"""LabelRecord: DynamoDB round trip under moto, caps, and validation of bad items."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from infra.functions.labeler.record import (
    MAX_LABELS,
    AnalysisError,
    Box,
    Color,
    Instance,
    Label,
    LabelRecord,
    ModerationLabel,
    Properties,
    RecordError,
    TextDetection,
    now_iso,
)
from infra.functions.labeler.table import ITEM_BUDGET_BYTES, SYNC_SHARDS, item_of, partition, record_of, shard_for
from infra.resources import table_definition


def make_record(**overrides) -> LabelRecord:
    stamp = now_iso()
    fields = dict(
        bucket="media-bucket",
        key="uploads/2026/11/0f8c2d1e-photo.jpg",
        etag='"9b2cf535f27731c974343645a3985328"',
        size=123456,
        status="LABELED",
        engine="local",
        labels=(
            Label(
                name="Dog",
                confidence=98.25,
                parents=("Animal", "Pet", "Mammal"),
                categories=("Animals and Pets",),
                aliases=("Canine",),
                instances=(Instance(box=Box(0.1, 0.2, 0.3, 0.4), confidence=97.5),),
            ),
            Label(name="Grass", confidence=61.0, parents=("Plant",)),
        ),
        moderation_labels=(
            ModerationLabel(name="Swimwear or Underwear", confidence=55.5, parent="", level=1),
        ),
        text=(TextDetection(text="STOP", type="LINE", confidence=99.1, box=Box(0.5, 0.5, 0.1, 0.05)),),
        properties=Properties(
            brightness=54.2,
            sharpness=88.0,
            contrast=40.1,
            dominant_colors=(Color(hex="#aabbcc", red=170, green=187, blue=204, percent=31.5, css="lightsteelblue", simplified="blue"),),
        ),
        model_versions={"labels": "3.0", "moderation": "7.0", "text": "3.0"},
        analyzed_at=stamp,
        updated_at=stamp,
    )
    fields.update(overrides)
    return LabelRecord(**fields)


@pytest.fixture
def table():
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        table = dynamodb.create_table(**table_definition("labels"))
        yield table


def test_round_trips_through_a_real_dynamodb_item(table):
    record = make_record()

    table.put_item(Item=item_of(record))
    item = table.get_item(Key={"pk": partition(record.key), "sk": "ANALYSIS"})["Item"]

    assert record_of(item) == record


def test_item_is_findable_through_the_sync_index(table):
    record = make_record()
    table.put_item(Item=item_of(record))

    found = table.query(
        IndexName="sync",
        KeyConditionExpression="gsi1pk = :s AND updated_at >= :t",
        ExpressionAttributeValues={":s": f"SYNC#{shard_for(record.key)}", ":t": record.updated_at},
    )["Items"]

    assert [record_of(i).key for i in found] == [record.key]


def test_failed_record_round_trips_with_its_error(table):
    record = make_record(status="FAILED", labels=(), moderation_labels=(), text=(), properties=Properties(),
                         error=AnalysisError(code="InvalidImageFormatException", message="Request has invalid image format"))
    table.put_item(Item=item_of(record))
    item = table.get_item(Key={"pk": partition(record.key), "sk": "ANALYSIS"})["Item"]

    assert record_of(item).error == record.error


def _walk(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def test_item_numbers_are_decimals_not_floats():
    item = item_of(make_record())

    leaves = list(_walk(item))
    assert not any(isinstance(v, float) for v in leaves)
    assert Decimal("98.25") in leaves


def test_huge_analysis_is_capped_below_dynamodb_item_limit(table):
    many_labels = tuple(
        Label(name=f"Label {i}", confidence=float(i % 100), instances=tuple(
            Instance(box=Box(0.0, 0.0, 0.5, 0.5), confidence=50.0) for _ in range(60)))
        for i in range(1000)
    )
    many_words = tuple(TextDetection(text="w" * 400, type="WORD", confidence=90.0, box=Box(0, 0, 0.1, 0.1)) for _ in range(1000))
    record = make_record(labels=many_labels, text=many_words)

    item = item_of(record)
    table.put_item(Item=item)  # moto enforces the 400 KB limit

    parsed = record_of(table.get_item(Key={"pk": partition(record.key), "sk": "ANALYSIS"})["Item"])
    assert len(parsed.labels) == MAX_LABELS
    assert parsed.labels[0].confidence == 99.0  # the most confident are the ones kept
    assert len(json.dumps(item, default=str)) <= ITEM_BUDGET_BYTES


def test_shard_is_stable_and_in_range():
    keys = [f"uploads/{i}.jpg" for i in range(200)]

    shards = [shard_for(k) for k in keys]

    assert shards == [shard_for(k) for k in keys]
    assert set(shards) == set(range(SYNC_SHARDS))
    assert shard_for("uploads/a.jpg") == 0  # fixed forever: changing it re-shards every record


def _break(item, path, value):
    broken = copy.deepcopy(item)
    target = broken
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if value is KeyError:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return broken


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("key", KeyError, "key"),
        ("status", "DONE", "status"),
        ("engine", "gpt", "engine"),
        ("schema_version", Decimal(2), "schema_version"),
        ("labels.0.confidence", Decimal(101), "labels[0].confidence"),
        ("labels.0.confidence", "high", "labels[0].confidence"),
        ("labels.1.name", "  ", "labels[1].name"),
        ("labels.0.parents", "Animal", "labels[0].parents"),
        ("labels.0.instances.0.box", KeyError, "labels[0].instances[0].box"),
        ("labels.0.instances.0.box.width", Decimal(-1), "labels[0].instances[0].box.width"),
        ("moderation_labels.0.level", Decimal(9), "moderation_labels[0].level"),
        ("text.0.type", "PARAGRAPH", "text[0].type"),
        ("properties.dominant_colors.0.red", Decimal(300), "properties.dominant_colors[0].red"),
        ("updated_at", "yesterday", "updated_at"),
        ("pk", "IMG#someone-else.jpg", "pk"),
        ("model_versions", {"labels": Decimal(3)}, "model_versions"),
    ],
)
def test_from_item_rejects_malformed_items_naming_the_field(path, value, named):
    item = _break(item_of(make_record()), path, value)

    with pytest.raises(RecordError) as excinfo:
        record_of(item)

    assert excinfo.value.path == named
    assert str(excinfo.value).startswith(named + ":")


def test_failed_record_without_error_is_rejected():
    item = item_of(make_record(status="FAILED"))

    with pytest.raises(RecordError, match="^error: missing"):
        record_of(item)


def test_non_finite_confidence_cannot_be_stored():
    record = make_record(labels=(Label(name="Dog", confidence=float("nan")),))

    with pytest.raises(RecordError, match="not finite"):
        item_of(record)


def test_to_dict_has_exactly_the_dataclass_fields():
    from dataclasses import asdict

    record = make_record(error=AnalysisError(code="InvalidImageFormatException", message="bad"))

    assert json.loads(json.dumps(record.to_dict())) == json.loads(json.dumps(asdict(record)))


def test_a_video_timeline_segment_is_never_empty_even_at_the_very_end():
    from infra.functions.labeler.timeline import segments

    assert segments([0, 1000, 2000, 5000], interval_ms=1000, duration_ms=6000) == [(0, 3000), (5000, 6000)]
    assert segments([6000], interval_ms=1000, duration_ms=6000) == [(6000, 6001)]  # a frame at the end
