"""Reconciling the classifier with the object detector, and the calibration that puts
both on one scale (issue 19, finding 1)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from photos.analysis import taxonomy
from photos.analysis.calibration import DATA, GROUPS, Calibration, group_of, isotonic
from photos.analysis.evidence import Evidence, Kinds, agree, reconcile
from photos.analysis.general import Vocabulary
from photos.analysis.yolo import Detection


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary()


@pytest.fixture(scope="module")
def kinds(vocab):
    ancestors = {name: meta["parents"] for name, meta in vocab.labels.items()}
    ancestors.update({name: meta["parents"] for name, meta in taxonomy.LABELS.items()})
    return Kinds(ancestors, lambda name: group_of(name, ancestors.get(name, [])))


def box(name: str, confidence: float, size: float = 0.9, at: float = 0.05) -> Evidence:
    det = Detection(name=name, score=confidence / 100, left=at, top=at, width=size, height=size)
    return Evidence(name, confidence, "detector", det)


def run(general, boxes, vocab, kinds, crop=None):
    crops = []

    def crop_opinion(det):
        crops.append(det)
        return (crop or {}).copy()

    general, boxes = reconcile(general, boxes, crop_opinion, kinds, vocab.descendants)
    return general, [(b.name, round(b.confidence)) for b in boxes], crops


def test_a_stronger_classifier_renames_the_detectors_large_box(vocab, kinds):
    general, boxes, crops = run({"Cat": 91.0, "Animal": 95.0}, [box("Dog", 60)], vocab, kinds)

    assert boxes == [("Cat", 91)] and not crops
    assert general["Cat"] == 91.0  # the renamed box is the classifier's word: not counted twice


def test_a_stronger_large_box_removes_the_contrary_classifier_label_and_its_breeds(vocab, kinds):
    general, boxes, _ = run({"Dog": 60.0, "Border Collie": 55.0, "Animal": 90.0}, [box("Cat", 80)], vocab, kinds)

    assert boxes == [("Cat", 80)]
    assert "Dog" not in general and "Border Collie" not in general and general["Animal"] == 90.0


def test_a_small_box_is_judged_on_its_own_crop(vocab, kinds):
    """The person-dog-horse field: the detector calls the small white horse a Cow; the
    classifier, shown only that box, says Horse with more confidence."""
    general, boxes, crops = run(
        {"Dog": 88.0}, [box("Cow", 72, size=0.3)], vocab, kinds, crop={"Common Sorrel Horse": 80.0, "Horse": 85.0}
    )

    assert boxes == [("Horse", 85)] and len(crops) == 1
    assert general == {"Dog": 88.0}  # the whole image's opinion is about the dog, and stands


def test_a_confident_box_keeps_its_name_against_a_weaker_crop(vocab, kinds):
    general, boxes, _ = run({}, [box("Horse", 90, size=0.2)], vocab, kinds, crop={"Cow": 60.0})

    assert boxes == [("Horse", 90)]


def test_crops_are_capped_and_faint_boxes_not_cropped(vocab, kinds):
    boxes = [box("Cow", 80 - i, size=0.1, at=0.12 * i) for i in range(6)] + [box("Sheep", 20, size=0.1, at=0.8)]
    _, names, crops = run({}, boxes, vocab, kinds, crop={"Horse": 95.0})

    assert len(crops) == 3
    assert names.count(("Horse", 95)) == 3 and ("Sheep", 20) in names


def test_any_two_animal_kinds_are_rivals_but_a_kind_and_its_parent_are_not(kinds):
    assert "Lion" in kinds.rivals("Cat") and "Big Cat" in kinds.rivals("Cat")
    assert "Kite" in kinds.rivals("Bird") and "Teddy Bear" in kinds.rivals("Bear")
    assert "Bus" in kinds.rivals("Car") and "Minivan" not in kinds.rivals("Car")
    assert "Dog" not in kinds.rivals("Border Collie") and "Mammal" not in kinds.rivals("Cat")
    assert kinds.rivals("Pet") == frozenset() and kinds.rivals("Person") == frozenset()


def test_on_a_tie_the_box_takes_the_more_specific_name(vocab, kinds):
    _, boxes, _ = run({"Big Cat": 90.0, "Lion": 90.0}, [box("Cat", 83)], vocab, kinds)

    assert boxes == [("Lion", 90)]


def test_a_classifier_kind_that_every_box_contradicts_more_confidently_is_dropped(vocab, kinds):
    general, _, _ = run({"Cow": 70.0, "Ox": 65.0, "Animal": 95.0}, [box("Horse", 90, size=0.2)], vocab, kinds, crop={})

    assert "Cow" not in general and "Ox" not in general and general["Animal"] == 95.0


def test_one_weaker_contradicting_box_or_a_box_never_looked_at_does_not_drop_the_whole_images_kind(vocab, kinds):
    boxes = [box("Dog", 90, size=0.2), box("Dog", 50, size=0.2, at=0.5)]
    general, _, _ = run({"Butterfly": 70.0}, boxes, vocab, kinds, crop={})
    assert "Butterfly" in general  # the 50 box is less sure than the classifier

    faint = [box("Dog", 25, size=0.01)]  # under the crop floor: never judged
    general, _, crops = run({"Cat": 20.0}, faint, vocab, kinds, crop={})
    assert "Cat" in general and not crops


def test_a_label_the_whole_image_lost_can_still_name_a_small_box_from_its_crop(vocab, kinds):
    """Order independence: the large Cat box drops the whole image's "Dog", yet the small
    box's own crop may still say Dog."""
    general, boxes, _ = run(
        {"Cat": 60.0, "Dog": 50.0}, [box("Cat", 90), box("Cow", 40, size=0.1, at=0.6)], vocab, kinds, crop={"Dog": 80.0}
    )
    assert "Dog" not in general and ("Dog", 80) in boxes


def test_rival_boxes_over_one_object_are_one_box(vocab, kinds):
    cow = box("Cow", 48, size=0.3)
    cow.det = Detection("Cow", 0.48, 0.63, 0.33, 0.31, 0.48, alternatives=(("Sheep", 0.23),))
    horse = box("Horse", 29, size=0.3)
    horse.det = Detection("Horse", 0.29, 0.63, 0.33, 0.31, 0.46, alternatives=(("Cow", 0.25),))
    _, boxes = reconcile({}, [cow, horse], lambda det: {}, kinds, vocab.descendants, lambda name, raw: raw * 100)

    assert len(boxes) == 1 and boxes[0].name == "Cow"
    assert boxes[0].confidence == pytest.approx(19.0)  # torn between Cow 0.48 and Horse 0.29: the margin


def test_a_classifier_kind_that_a_box_agrees_with_stands_and_gains(vocab, kinds):
    general, _, _ = run(
        {"Dog": 80.0}, [box("Dog", 60, size=0.1), box("Horse", 90, size=0.2, at=0.5)], vocab, kinds, crop={}
    )

    assert general == {"Dog": pytest.approx(92.0)}  # 1 - 0.2 * 0.4


def test_a_box_the_classifier_agrees_with_gains_confidence(vocab, kinds):
    general, boxes, _ = run({"Cat": 90.0, "Animal": 95.0}, [box("Cat", 40)], vocab, kinds)

    assert boxes == [("Cat", 94)]
    assert general["Cat"] == pytest.approx(agree(90.0, 40.0))  # each model counted once


def test_a_torn_box_takes_the_kind_of_the_photos_other_boxes_or_its_margin(vocab, kinds):
    """A herd of horses with one box the detector called Cow 0.63 / Horse 0.36."""

    def torn(name, score, alternative, at, size=0.1):
        item = box(name, score * 100, size=size)
        item.det = Detection(item.det.name, score, at, at, size, size, alternatives=((alternative[0], alternative[1]),))
        return item

    herd = [torn("Horse", 0.67, ("Cow", 0.27), 0.1), torn("Horse", 0.64, ("Cow", 0.25), 0.3), torn("Cow", 0.63, ("Horse", 0.36), 0.5)]
    _, boxes = reconcile({}, herd, lambda det: {}, kinds, vocab.descendants, lambda name, raw: raw * 100)
    assert [(b.name, round(b.confidence)) for b in boxes] == [("Horse", 67), ("Horse", 64), ("Horse", 36)]

    alone = [torn("Cow", 0.48, ("Horse", 0.38), 0.1)]
    _, boxes = reconcile({}, alone, lambda det: {}, kinds, vocab.descendants, lambda name, raw: raw * 100)
    assert [(b.name, round(b.confidence)) for b in boxes] == [("Cow", 10)]


def test_no_box_no_reconciliation(vocab, kinds):
    general, boxes, crops = run({"Cat": 91.0, "Dog": 40.0}, [], vocab, kinds)

    assert general == {"Cat": 91.0, "Dog": 40.0} and boxes == [] and not crops


# --- calibration ----------------------------------------------------------------------


def test_isotonic_fit_is_monotone_and_shrinks_small_blocks():
    raw = np.array([0.1, 0.2, 0.3, 0.35, 0.5, 0.6, 0.7, 0.9])
    right = np.array([False, False, True, False, True, True, True, True])
    knots = isotonic(raw, right, prior=0.5)
    xs, ys = zip(*knots)

    assert list(xs) == sorted(xs) and xs[0] == 0.0 and xs[-1] == 1.0
    assert list(ys) == sorted(ys)
    assert ys[0] > 0.0 and ys[-1] < 100.0  # four right answers do not make a certainty


def test_isotonic_pools_a_violation():
    knots = isotonic(np.array([0.2, 0.4, 0.6]), np.array([True, False, True]), prior=0.5, strength=0.0)

    assert [y for _, y in knots] == [50.0, 50.0, 100.0, 100.0]


def test_a_group_without_its_own_map_uses_the_models_map_and_an_unknown_model_its_raw_score():
    calibration = Calibration({"detector": {"*": [[0.0, 10.0], [1.0, 90.0]], "person": [[0.0, 50.0], [1.0, 100.0]]}})

    assert calibration("detector", "person", 0.5) == 75.0
    assert calibration("detector", "animal", 0.5) == 50.0
    assert calibration("text", "object", 0.93) == pytest.approx(93.0)


def test_groups_come_from_the_ancestry():
    assert group_of("Border Collie", ["Dog", "Canine", "Pet", "Animal", "Mammal"]) == "animal"
    assert group_of("Face", ["Head", "Person"]) == "person"
    assert group_of("School Bus", ["Bus", "Vehicle"]) == "vehicle"
    assert group_of("Kite", ["Toy"]) == "object"


def test_the_committed_calibration_was_fitted_on_the_fit_half_and_is_monotone():
    data = json.loads(DATA.read_text(encoding="utf-8"))

    assert "fit half" in data["fitted_on"] and "Platt" in data["method"]
    assert set(data["maps"]) == {"classifier", "detector", "faces"}
    for model, groups in data["maps"].items():
        assert "*" in groups and set(groups) <= {"*", *GROUPS}, model
        for group, knots in groups.items():
            xs, ys = zip(*knots)
            assert xs[0] == 0.0 and xs[-1] == 1.0 and list(xs) == sorted(xs), (model, group)
            assert list(ys) == sorted(ys) and 0 <= ys[0] and ys[-1] <= 100, (model, group)


def test_the_classifier_does_not_rename_a_kind_it_has_no_class_for(vocab, kinds):
    """ImageNet has no toy kite and no giraffe: its Bird of Prey on a kite's crop, or its
    Llama on a giraffe, is no evidence against the detector."""
    general, boxes = reconcile(
        {"Parachute": 78.0}, [box("Kite", 75, size=0.05), box("Giraffe", 60, size=0.3, at=0.5)],
        lambda det: {"Bird of Prey": 90.0, "Bird": 90.0, "Llama": 80.0}, kinds, vocab.descendants,
        classifier_knows=vocab.names_a_class,
    )

    assert [(b.name, round(b.confidence)) for b in boxes] == [("Kite", 75), ("Giraffe", 60)]
    assert not vocab.names_a_class("Kite") and not vocab.names_a_class("Giraffe") and vocab.names_a_class("Horse")
