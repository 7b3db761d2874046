"""General labels and object boxes on the real sample photos, the label vocabulary, the
model converters and their integrity checks."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from photos.analysis import LocalRekognition, ModelError
from photos.analysis import models
from photos.analysis.build import torch_weights, vocabulary
from photos.analysis.general import Vocabulary
from tests.photos.analysis.test_local_rekognition import assert_valid_response
from tests.samples import SKIMAGE_DATA, photo_bytes

DISPLAY_THRESHOLD = 70.0  # settings.LABEL_DISPLAY_THRESHOLD's default
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def rekognition():
    client = LocalRekognition(label_models=[])
    client.warm()
    return client


def labels_of(client, data: bytes, **params) -> dict[str, dict]:
    response = client.detect_labels(Image={"Bytes": data}, **params)
    assert_valid_response("detect_labels", response)
    return {lb["Name"]: lb for lb in response["Labels"]}


def parents(label: dict) -> set[str]:
    return {p["Name"] for p in label["Parents"]}


def area(box: dict) -> float:
    return box["Width"] * box["Height"]


def contains(outer: dict, inner: dict) -> bool:
    cx, cy = inner["Left"] + inner["Width"] / 2, inner["Top"] + inner["Height"] / 2
    return outer["Left"] <= cx <= outer["Left"] + outer["Width"] and outer["Top"] <= cy <= outer["Top"] + outer["Height"]


# --- what the detector sees on real photos ---------------------------------------------


def test_chelsea_is_a_cat_with_its_parents_and_a_box_and_never_a_dog(rekognition):
    labels = labels_of(rekognition, photo_bytes("chelsea"), MinConfidence=50)

    cat = labels["Cat"]
    assert cat["Confidence"] > 85
    assert {"Animal", "Mammal", "Pet"} <= parents(cat)
    assert {c["Name"] for c in cat["Categories"]} == {"Animals and Pets"}
    assert len(cat["Instances"]) == 1 and area(cat["Instances"][0]["BoundingBox"]) > 0.5
    assert labels["Animal"]["Confidence"] >= cat["Confidence"]
    assert "Dog" not in labels


def test_coffee_is_a_coffee_drink(rekognition):
    labels = labels_of(rekognition, photo_bytes("coffee"), MinConfidence=50)

    coffee = [lb for name, lb in labels.items() if "Coffee" in name or "Cup" in name or name == "Espresso"]
    assert coffee, sorted(labels)
    assert any({"Beverage"} & parents(lb) or "Food and Beverage" in {c["Name"] for c in lb["Categories"]} for lb in coffee)
    assert labels["Espresso"]["Confidence"] > DISPLAY_THRESHOLD


def test_motorcycle_is_a_motorcycle_with_a_box(rekognition):
    labels = labels_of(rekognition, photo_bytes("motorcycle"), MinConfidence=50)

    motorcycle = labels["Motorcycle"]
    assert motorcycle["Confidence"] > DISPLAY_THRESHOLD
    assert "Vehicle" in parents(motorcycle)
    (instance,) = motorcycle["Instances"]
    assert area(instance["BoundingBox"]) > 0.25


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_person_instances_are_body_boxes_around_the_face(rekognition, photo):
    labels = labels_of(rekognition, photo_bytes(photo), MinConfidence=50)

    (face,) = labels["Face"]["Instances"]
    bodies = labels["Person"]["Instances"]
    assert bodies, "the detector found no body"
    body = max(bodies, key=lambda i: area(i["BoundingBox"]))["BoundingBox"]
    assert area(body) > 4 * area(face["BoundingBox"])
    assert contains(body, face["BoundingBox"])
    assert labels["Person"]["Confidence"] > DISPLAY_THRESHOLD


def test_camera_photo_has_the_cameraman_and_his_tripod(rekognition):
    labels = labels_of(rekognition, photo_bytes("camera"), MinConfidence=50)

    assert labels["Person"]["Confidence"] > DISPLAY_THRESHOLD
    assert labels["Person"]["Instances"]
    assert {"Tripod", "Camera"} & {name for name, lb in labels.items() if lb["Confidence"] > DISPLAY_THRESHOLD}


def test_rocket_is_a_rocket(rekognition):
    labels = labels_of(rekognition, photo_bytes("rocket"), MinConfidence=50)

    assert {"Rocket", "Missile", "Spacecraft", "Space Shuttle"} & set(labels), sorted(labels)


def test_hubble_deep_field_shows_nothing_above_the_display_threshold(rekognition):
    data = (SKIMAGE_DATA / "hubble_deep_field.jpg").read_bytes()

    labels = labels_of(rekognition, data, MinConfidence=DISPLAY_THRESHOLD)

    assert labels == {}


def test_min_confidence_max_labels_and_filters_apply_to_general_labels(rekognition):
    data = photo_bytes("chelsea")
    everything = labels_of(rekognition, data, MinConfidence=50)

    assert all(lb["Confidence"] >= 93 for lb in labels_of(rekognition, data, MinConfidence=93).values())
    assert len(labels_of(rekognition, data, MinConfidence=50, MaxLabels=2)) == 2
    only_cat = labels_of(rekognition, data, MinConfidence=50, Settings={"GeneralLabels": {"LabelInclusionFilters": ["Cat"]}})
    assert set(only_cat) == {"Cat"}
    no_cat = labels_of(rekognition, data, MinConfidence=50, Settings={"GeneralLabels": {"LabelExclusionFilters": ["Cat"]}})
    assert "Cat" not in no_cat and "Animal" in no_cat
    by_category = labels_of(
        rekognition, photo_bytes("coffee"), MinConfidence=50,
        Settings={"GeneralLabels": {"LabelCategoryInclusionFilters": ["Food and Beverage"]}},
    )
    assert "Espresso" in by_category and "Dining Table" not in by_category
    assert set(everything) >= {"Cat", "Animal"}


# --- the vocabulary -------------------------------------------------------------------


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary()


def test_every_imagenet_class_maps_to_a_label(vocab):
    assert len(vocab.classes) == 1000
    assert all(name in vocab.labels and name.strip() for name in vocab.classes)
    assert len(vocab.coco_classes) == 80 and all(name in vocab.labels for name in vocab.coco_classes)


def test_label_names_are_unique_title_case_and_parents_known(vocab):
    names = list(vocab.labels)
    assert len({n.lower() for n in names}) == len(names)
    for name, meta in vocab.labels.items():
        assert name[0].isupper() or name[0].isdigit(), name
        assert set(meta["parents"]) <= set(vocab.labels), name
        assert name not in meta["parents"]


def test_no_parent_cycle(vocab):
    for name in vocab.labels:
        seen, frontier = set(), list(vocab.labels[name]["parents"])
        while frontier:
            parent = frontier.pop()
            assert parent != name, f"cycle through {name}"
            if parent not in seen:
                seen.add(parent)
                frontier.extend(vocab.labels[parent]["parents"])


def test_obscure_wordnet_nodes_are_not_labels(vocab):
    assert not {"Placental", "Chordate", "Instrumentality", "Artifact", "Whole", "Entity", "Carnivore"} & set(vocab.labels)


def test_probabilities_add_up_the_tree(vocab):
    probabilities = np.zeros(1000, np.float32)
    for name, p in (("Tabby Cat", 0.38), ("Tiger Cat", 0.37), ("Egyptian Mau", 0.16), ("Golden Retriever", 0.02)):
        probabilities[vocab.classes.index(name)] = p

    scores = vocab.aggregate(probabilities)

    assert scores["Cat"] == pytest.approx(0.91, abs=1e-4)
    assert scores["Dog"] == pytest.approx(0.02, abs=1e-4)
    assert scores["Pet"] == pytest.approx(0.93, abs=1e-4)
    assert scores["Animal"] == pytest.approx(0.93, abs=1e-4)


def test_committed_vocabulary_is_what_the_generator_makes():
    text = vocabulary.render(vocabulary.generate())

    assert text == vocabulary.OUTPUT.read_text(), "run `make vocabulary`"


def test_the_generator_refuses_a_parent_cycle(monkeypatch):
    from photos.analysis.build import curation

    monkeypatch.setitem(curation.EXTRA_PARENTS, "Animal", ["Cat"])

    with pytest.raises(vocabulary.VocabularyError, match="parent cycle"):
        vocabulary.generate()


# --- models: conversion and integrity --------------------------------------------------


def test_model_with_the_wrong_sha256_fails_clearly_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_MODEL_DIR", str(tmp_path))
    spec = models.MODELS["efficientnet-lite0"]
    (tmp_path / spec.filename).write_bytes(b"not the converted model")

    with pytest.raises(ModelError, match=r"efficientnet-lite0\.onnx: sha256 .* does not match the expected"):
        models.verified_path("efficientnet-lite0")


def test_conversion_is_reproducible_to_the_pinned_sha256(tmp_path):
    for name in ("efficientnet-lite0", "nanodet-g"):
        spec = models.MODELS[name]
        built = models.build(spec, tmp_path)
        assert hashlib.sha256(built.read_bytes()).hexdigest() == spec.sha256


def test_weights_reader_refuses_code_in_a_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    with path.open("wb") as f:
        for obj in (torch_weights.LEGACY_MAGIC, 1001, {}):
            pickle.dump(obj, f)
        pickle.dump(Evil(), f)

    with pytest.raises(torch_weights.WeightsError, match="refusing to load"):
        torch_weights.load_state_dict(path)


def test_no_heavy_framework_in_the_locks():
    for lock in ("requirements.txt", "requirements-dev.txt"):
        names = {re.split(r"[=<>\[ ]", line, 1)[0].lower() for line in (REPO / lock).read_text().splitlines() if line and line[0].isalpha()}
        assert not names & {"torch", "torchvision", "tensorflow", "tensorflow-cpu", "tf-keras", "jax"}, lock


def test_model_versions_name_every_model(rekognition):
    versions = rekognition.model_versions["labels"]

    assert "efficientnet-lite0" in versions and "nanodet-g" in versions
    assert json.dumps(versions)  # plain string, stored with each record


def test_a_shipped_model_that_differs_from_its_package_fails_clearly(tmp_path):
    from photos.analysis.runtime import nudenet_model_path
    from photos.analysis.yolo import YoloModel

    tampered = tmp_path / "320n.onnx"
    tampered.write_bytes(nudenet_model_path().read_bytes()[:-1] + b"\0")

    with pytest.raises(ModelError, match=r"320n\.onnx: sha256 .* is not the pinned package's"):
        YoloModel(tampered)


def test_no_name_serves_two_senses():
    """ImageNet's kite is a hawk and COCO's a toy: one name for both filed kites over a
    beach under Bird and Animal, and "Bird" found the beach (issue 19, finding 1). Every
    name a COCO class and an ImageNet class share is one reviewed thing."""
    from photos.analysis.build import curation

    vocabulary_file = json.loads(vocabulary.OUTPUT.read_text())
    shared = set(vocabulary_file["classes"]) & set(vocabulary_file["coco_classes"])
    assert shared <= curation.SAME_SENSE, shared - curation.SAME_SENSE
    labels = vocabulary_file["labels"]
    assert labels["Kite"]["parents"] == ["Toy"]
    assert labels["Bird of Prey"]["parents"] == ["Bird", "Animal"]
    for name in ("Crane", "Construction Crane", "Computer Mouse", "Baseball Bat"):  # the other classic pairs
        animal = "Animal" in labels[name]["parents"]
        assert animal is (name == "Crane"), name


def test_the_generator_refuses_a_name_two_senses_share(monkeypatch):
    from photos.analysis.build import curation

    monkeypatch.setitem(curation.CLASS_NAMES, "n01608432", "Kite")

    with pytest.raises(vocabulary.VocabularyError, match=r"n01608432 \(kite\) and COCO's 'Kite' share a name"):
        vocabulary.generate()
