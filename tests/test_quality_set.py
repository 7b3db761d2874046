"""The label evaluation set (benchmarks/quality): complete, consistent with the vocabulary,
honest about its split; and the pieces its figures rest on (the Qt resource reader, the
calibration fit, the matching rules). The photos themselves are fetched by `make bench`,
not here."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
import struct
import zlib

import numpy as np
import pytest

from benchmarks.quality import evaluate, fetch
from photos.analysis import taxonomy
from photos.analysis.calibration import logistic
from photos.analysis.general import Vocabulary
from tests.samples import SKIMAGE_DATA

SPEC = fetch.manifest()
PHOTOS = SPEC["photos"]
VOCABULARY = set(Vocabulary().labels) | set(taxonomy.LABELS)


def truth(photo_id: str) -> dict:
    return json.loads((evaluate.TRUTH / f"{photo_id}.json").read_text(encoding="utf-8"))


def test_the_set_has_at_least_60_photos_split_in_two_halves_with_every_group_in_both():
    splits = {p["split"] for p in PHOTOS}
    assert len(PHOTOS) >= 60 and splits == {"fit", "check"}
    assert len({p["id"] for p in PHOTOS}) == len(PHOTOS)
    for half in ("fit", "check"):
        members = [p for p in PHOTOS if p["split"] == half]
        assert len(members) >= 30
        assert {p["group"] for p in members} == {p["group"] for p in PHOTOS}


def test_every_photo_has_its_provenance_and_every_source_its_version_and_licence():
    for key, source in SPEC["sources"].items():
        assert source["registry"] in {"pypi", "npm", "debian"}, key
        assert source["name"] and source["version"] and source["licence"], key
        assert source["name"] != "darknet"  # kept for an independent check
    for photo in PHOTOS:
        assert photo["source"] in SPEC["sources"], photo["id"]
        assert re.fullmatch(r"[0-9a-f]{64}", photo["sha256"]), photo["id"]
        assert photo["path"] and photo["photo_licence"] and photo["contents"], photo["id"]


def test_the_photos_of_the_issues_findings_are_not_fitted_on():
    check = {p["id"] for p in PHOTOS if p["split"] == "check"}
    assert {"person-dog-horse", "farm-horse", "kite", "rocket"} <= check


def test_every_truth_file_uses_the_vocabulary_and_boxes_inside_the_image():
    files = {p.stem for p in evaluate.TRUTH.glob("*.json")}
    assert files == {p["id"] for p in PHOTOS}
    for photo in PHOTOS:
        t = truth(photo["id"])
        assert 1 <= len(t["labels"]) <= 5, photo["id"]
        for name in t["labels"] + t.get("also", []):
            assert name in VOCABULARY, (photo["id"], name)
        for b in t.get("boxes", []):
            left, top, width, height = b["box"]
            assert b["label"] in t["labels"], (photo["id"], b)
            assert width > 0 and height > 0 and left >= 0 and top >= 0, (photo["id"], b)
            assert left + width <= 1.001 and top + height <= 1.001, (photo["id"], b)


def qres(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A version-2 Qt resource file holding one directory of files (compressed or not)."""
    names, payload, nodes = b"", b"", []

    def name(text: str) -> int:
        nonlocal names
        offset = len(names)
        names += struct.pack(">HI", len(text), 0) + text.encode("utf-16-be")
        return offset

    root, folder = name(""), name("dir")
    entries = []
    for filename, (data, compressed) in files.items():
        blob = struct.pack(">I", len(data)) + zlib.compress(data) if compressed else data
        entries.append((name(filename), 1 if compressed else 0, len(payload)))
        payload += struct.pack(">I", len(blob)) + blob
    nodes.append(struct.pack(">IHII", root, 2, 1, 1) + b"\0" * 8)
    nodes.append(struct.pack(">IHII", folder, 2, len(entries), 2) + b"\0" * 8)
    for name_offset, flags, offset in entries:
        nodes.append(struct.pack(">IHHHI", name_offset, flags, 0, 0, offset) + b"\0" * 8)
    tree = b"".join(nodes)
    header = 20
    return b"qres" + struct.pack(">IIII", 2, header, header + len(tree), header + len(tree) + len(payload)) + tree + payload + names


def test_the_qt_resource_reader_finds_plain_and_compressed_files():
    data = qres({"a.webp": (b"RIFF-plain", False), "b.webp": (b"RIFF-packed" * 20, True)})

    assert fetch.qt_resource(data, ":/dir/a.webp") == b"RIFF-plain"
    assert fetch.qt_resource(data, ":/dir/b.webp") == b"RIFF-packed" * 20
    with pytest.raises(fetch.FetchError, match="no 'c.webp'"):
        fetch.qt_resource(data, ":/dir/c.webp")
    with pytest.raises(fetch.FetchError, match="not a Qt resource"):
        fetch.qt_resource(b"PK\x03\x04", ":/dir/a.webp")


def test_the_platt_map_rises_with_the_score_and_never_falls():
    rng = np.random.default_rng(7)
    raw = rng.uniform(0.05, 0.95, 400)
    right = rng.uniform(0, 1, 400) < raw**0.5  # right more often than the raw score says
    knots = logistic(raw, right)
    xs, ys = zip(*knots)
    assert list(xs) == sorted(xs) and xs[0] == 0.0 and xs[-1] == 1.0
    assert list(ys) == sorted(ys) and ys[-1] > ys[0]
    assert dict(knots)[0.5] > 60  # it learned that 0.5 is right about 70 % of the time

    falling = logistic(raw, raw < 0.5)  # a score that predicts the opposite
    values = [y for _, y in falling]
    assert max(values) - min(values) < 1e-6  # held flat, not turned upside down


def test_matching_treats_a_label_and_its_ancestors_as_one():
    assert evaluate.related("Hen", "Bird") and evaluate.related("Bird", "Hen")
    assert not evaluate.related("Horse", "Cow")
    assert evaluate.found("Dog", {"Border Collie"}) and not evaluate.found("Border Collie", {"Dog"})
    assert evaluate.iou([0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]) == 1.0
    assert evaluate.iou([0, 0, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]) == 0.0


def test_the_evaluation_runs_on_the_set_photos_this_machine_already_has(monkeypatch, capsys):
    """scikit-image's photos are installed with the app: the same bytes as the set's (the
    sha256 says so), scored by the real evaluation, both halves."""
    installed = []
    for p in PHOTOS:
        if p["source"] == "scikit-image":
            path = SKIMAGE_DATA / Path(p["path"]).name
            assert hashlib.sha256(path.read_bytes()).hexdigest() == p["sha256"], p["id"]
            installed.append((p, path, truth(p["id"])))
    monkeypatch.setattr(evaluate, "photos", lambda split: [item for item in installed if item[0]["split"] == split])

    for half in ("fit", "check"):
        result = evaluate.score(half, per_photo=True)
        evaluate.report(result, half)
        totals = result["totals"]
        assert totals["required"] > 0 and totals["shown"] > 0
        assert totals["shown_right"] <= totals["shown"] and totals["required_found"] <= totals["required"]
    printed = capsys.readouterr().out
    assert "Label quality on the check half" in printed and "rocket" in printed and "top confusions" in printed
