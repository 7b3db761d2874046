"""Label quality of the local detector, measured on the evaluation set; and its calibration.

    .venv/bin/python -m benchmarks.quality.evaluate            # check half (make bench runs it)
    .venv/bin/python -m benchmarks.quality.evaluate --photos   # and each photo's labels
    .venv/bin/python -m benchmarks.quality.evaluate --fit      # refit data/calibration.json (make calibrate)

The set (``photos.json``, ``truth/<id>.json``): everyday photos from packages, each with
the labels a person would expect (``labels``, which recall counts), other labels that are
true of it (``also``: showing them is not an error) and boxes for the people, animals,
vehicles and main objects. A label's ancestors are true whenever it is.

Printed for the check half at the display threshold: precision (shown labels that are
true; also for the most specific labels only, as parents such as "Animal" are easy) and
recall (expected labels shown), per model and overall; Person recall; box recall and
precision (IoU >= 0.5, same label); and the top confusions (an expected label missed and
a wrong label of the same group shown in its place).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from infra.functions.labeler.rendition import analysis_rendition, register_decoders
from photos.analysis import LocalRekognition, taxonomy
from photos.analysis.calibration import DATA, Calibration, group_of, logistic

from .fetch import HERE, fetch_all, manifest

TRUTH = HERE / "truth"
DISPLAY_THRESHOLD = 70.0  # settings.LABEL_DISPLAY_THRESHOLD's default
SWEEP = (50.0, 60.0, 70.0, 80.0, 90.0)  # thresholds the precision/recall trade-off is printed at
RELIABILITY = (50.0, 60.0, 70.0, 80.0, 90.0)  # confidence bins of 10 from each
BOX_IOU = 0.5
FIT_BOX_IOU = 0.4  # a detection counts as right for fitting when it overlaps a true box this much
# a group whose fitted samples weigh less uses the model's map over all groups
MIN_GROUP_SAMPLES = 25
PHOTO_WEIGHT = 5.0  # one photo's samples in a group weigh at most this much together
MODELS = ("classifier", "detector", "faces", "text")


@dataclass
class Shown:
    name: str
    confidence: float
    model: str
    box: list[float] | None
    shown: bool


def truth(photo_id: str) -> dict:
    return json.loads((TRUTH / f"{photo_id}.json").read_text(encoding="utf-8"))


PARTIAL = False  # --partial: skip photos not annotated yet (while annotating)


def photos(split: str | None) -> list[tuple[dict, Path, dict]]:
    paths = fetch_all(verbose=False)
    out = []
    for photo in manifest()["photos"]:
        if split and photo["split"] != split:
            continue
        if PARTIAL and not (TRUTH / f"{photo['id']}.json").is_file():
            continue
        if not (TRUTH / f"{photo['id']}.json").is_file():
            raise SystemExit(f"evaluation set: {photo['id']} has no truth/{photo['id']}.json")
        out.append((photo, paths[photo["id"]], truth(photo["id"])))
    return out


_client = None
CLASSIFIER: str | None = None  # --classifier: another converted classifier to compare


def client(calibration=None):
    """The detector under test; ``calibration`` replaces the committed one (after --fit
    in memory for another classifier)."""
    global _client
    if _client is None or calibration is not None:
        _client = LocalRekognition(label_models=[], classifier=CLASSIFIER, calibration=calibration)
        _client.warm()
    return _client


def analysable(path: Path) -> bytes:
    """The bytes the pipeline would analyse: JPEG and PNG as stored, anything else
    through the analysis rendition (as the worker and the Lambda do)."""
    data = path.read_bytes()
    register_decoders()
    with Image.open(path) as image:
        if image.format in ("JPEG", "PNG"):
            return data
    return analysis_rendition(data, max_pixels=200_000_000)


def work(data: bytes):
    c = client()
    c.clear_cache()
    return c._work("DetectLabels", {"Bytes": data})


def predict(path: Path) -> list[Shown]:
    return evidence_shown(work(analysable(path)))


def evidence_shown(image_work) -> list[Shown]:
    """Every model's evidence for an image, and whether each is shown."""
    items = client().label_evidence(image_work)
    return [
        Shown(
            e.name,
            e.confidence,
            e.model,
            [e.det.left, e.det.top, e.det.width, e.det.height] if e.det is not None else None,
            e.confidence >= DISPLAY_THRESHOLD,
        )
        for e in items
    ]


# --- truth ---------------------------------------------------------------------


def ancestors(name: str) -> list[str]:
    meta = taxonomy.LABELS.get(name) or client().vocabulary.meta(name)
    return list(meta["parents"])


def closure(names) -> set[str]:
    out = set()
    for name in names:
        out.add(name)
        out.update(ancestors(name))
    return out


def iou(a: list[float], b: list[float]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def related(a: str, b: str) -> bool:
    """One label is the other or under it (a Hen box answers a Bird box, and back)."""
    return a == b or a in ancestors(b) or b in ancestors(a)


def found(required: str, shown: set[str]) -> bool:
    return required in shown or any(required in ancestors(s) for s in shown)


# --- scoring -------------------------------------------------------------------


def model_names() -> dict[str, set[str]]:
    """Which labels each model can say (a label, or one under it): recall per model is
    counted over the expected labels in its reach."""
    vocabulary = client().vocabulary
    classifier = closure(vocabulary.classes)
    detector = closure(vocabulary.coco_classes)
    return {"classifier": classifier, "detector": detector, "faces": {"Person", "Face", "Head"}, "text": {"Text"}}


def score(split: str, *, per_photo: bool = False) -> dict:
    c = client()
    reach = model_names()
    totals = Counter()
    per_model = {m: Counter() for m in MODELS}
    confusions = Counter()
    sweep = {threshold: Counter() for threshold in SWEEP}
    reliability = {low: Counter() for low in RELIABILITY}
    box_errors: list[str] = []
    lines = []
    for photo, path, t in photos(split):
        true = closure(t["labels"] + t.get("also", []))
        required = list(t["labels"])
        data = analysable(path)
        response = c.detect_labels(Image={"Bytes": data}, MinConfidence=min(SWEEP))
        for threshold in SWEEP:
            names = {lb["Name"] for lb in response["Labels"] if lb["Confidence"] >= threshold}
            sweep[threshold]["shown"] += len(names)
            sweep[threshold]["right"] += len(names & true)
            sweep[threshold]["found"] += sum(found(r, names) for r in required)
            sweep[threshold]["required"] += len(required)
        for lb in response["Labels"]:
            low = max((b for b in RELIABILITY if lb["Confidence"] >= b), default=None)
            if low is not None:
                reliability[low]["shown"] += 1
                reliability[low]["right"] += lb["Name"] in true
                reliability[low]["confidence"] += lb["Confidence"]
        response["Labels"] = [
            {**lb, "Instances": [i for i in lb["Instances"] if i["Confidence"] >= DISPLAY_THRESHOLD]}
            for lb in response["Labels"]
            if lb["Confidence"] >= DISPLAY_THRESHOLD
        ]
        # The same bytes' per-image cache: the models ran once, for detect_labels above.
        items = evidence_shown(c._work("DetectLabels", {"Bytes": data}))
        shown = {lb["Name"] for lb in response["Labels"]}
        instances = [
            (lb["Name"], [i["BoundingBox"][k] for k in ("Left", "Top", "Width", "Height")])
            for lb in response["Labels"]
            for i in lb["Instances"]
        ]
        # overall
        specific = {s for s in shown if not any(s in ancestors(o) for o in shown if o != s)}
        totals["shown"] += len(shown)
        totals["shown_right"] += len(shown & true)
        totals["specific"] += len(specific)
        totals["specific_right"] += len(specific & true)
        totals["required"] += len(required)
        totals["required_found"] += sum(found(r, shown) for r in required)
        if "Person" in required:
            totals["person"] += 1
            totals["person_found"] += "Person" in shown
        # boxes
        # boxes: a truth box is found by a shown instance of a related label (IoU >= 0.5);
        # every shown Person (the body: faces were not boxed), animal or vehicle box and
        # every box of a boxed kind counts for precision (those were boxed exhaustively),
        # except in crowds boxed in part
        boxes = t.get("boxes", [])
        matched = set()
        for b in boxes:
            hit = next(
                (
                    j
                    for j, (n, box) in enumerate(instances)
                    if j not in matched and related(n, b["label"]) and iou(box, b["box"]) >= BOX_IOU
                ),
                None,
            )
            totals["boxes"] += 1
            if hit is not None:
                matched.add(hit)
                totals["boxes_found"] += 1
        if not t.get("more_unboxed"):
            boxed = {b["label"] for b in boxes}
            considered = [
                j
                for j, (n, _) in enumerate(instances)
                if n not in ("Face", "Head")
                and (n == "Person" or group_of(n, ancestors(n)) in ("animal", "vehicle") or any(related(n, k) for k in boxed))
            ]
            totals["instances"] += len(considered)
            totals["instances_right"] += sum(j in matched for j in considered)
            for j in considered:
                if j not in matched:
                    box_errors.append(f"{photo['id']}: {instances[j][0]}")
        # per model
        for model in MODELS:
            names = {s.name for s in items if s.model == model and s.shown}
            in_reach = [r for r in required if r in reach[model]]
            per_model[model]["shown"] += len(names)
            per_model[model]["right"] += len(names & true)
            per_model[model]["required"] += len(in_reach)
            per_model[model]["found"] += sum(found(r, names) for r in in_reach)
        # confusions: a wrong specific label, against what was missed in its group
        missed = [r for r in required if not found(r, shown)]
        for wrong in sorted(specific - true):
            group = group_of(wrong, ancestors(wrong))
            against = [m for m in missed if group_of(m, ancestors(m)) == group]
            confusions[(against[0] if against else "(not there)", wrong)] += 1
        if per_photo:
            top = sorted(((s.confidence, s.name, s.model) for s in items if s.confidence >= 50), reverse=True)
            seen, listed = set(), []
            for conf, name, model in top:
                if name not in seen:
                    seen.add(name)
                    listed.append(f"{name} {conf:.0f}{'' if conf >= DISPLAY_THRESHOLD else '(hidden)'}")
            lines.append(
                f"{photo['id']:<20} expected {', '.join(required)}; missed {', '.join(missed) or '-'}; "
                f"wrong {', '.join(sorted(specific - true)) or '-'}\n{'':<20} {'; '.join(listed[:12])}"
            )
    return {
        "totals": totals, "per_model": per_model, "confusions": confusions, "lines": lines, "sweep": sweep,
        "reliability": reliability, "box_errors": box_errors,
    }


def ratio(a: int, b: int) -> str:
    return f"{a / b:.2f} ({a}/{b})" if b else "n/a"


def report(result: dict, split: str) -> None:
    t, per_model = result["totals"], result["per_model"]
    print(f"\nLabel quality on the {split} half, display threshold {DISPLAY_THRESHOLD:.0f}:")
    print(f"  overall      precision {ratio(t['shown_right'], t['shown'])}"
          f"   most specific {ratio(t['specific_right'], t['specific'])}"
          f"   recall {ratio(t['required_found'], t['required'])}")
    print(f"  Person       recall {ratio(t['person_found'], t['person'])}")
    print(f"  boxes        recall {ratio(t['boxes_found'], t['boxes'])}   precision {ratio(t['instances_right'], t['instances'])}")
    for model in MODELS:
        m = per_model[model]
        print(f"  {model:<12} precision {ratio(m['right'], m['shown'])}   recall {ratio(m['found'], m['required'])} (of the expected labels it can name)")
    if any(result["sweep"][t]["required"] for t in SWEEP):
        print("  by threshold: " + "   ".join(
            f"{t:.0f}: P {ratio(result['sweep'][t]['right'], result['sweep'][t]['shown']).split()[0]}"
            f" R {ratio(result['sweep'][t]['found'], result['sweep'][t]['required']).split()[0]}"
            for t in SWEEP
        ))
    print("  calibration (shown labels by confidence: mean confidence -> share right):")
    for low, c in result["reliability"].items():
        if c["shown"]:
            print(f"    {low:.0f}-{low + 10:.0f}: {c['confidence'] / c['shown']:.0f} -> {100 * c['right'] / c['shown']:.0f} % of {c['shown']}")
    if result["box_errors"]:
        print(f"  boxes shown that match no true box: {', '.join(result['box_errors'])}")
    print("  top confusions (expected -> shown instead):")
    for (expected, wrong), count in result["confusions"].most_common(10):
        print(f"    {count} x {expected} -> {wrong}")
    for line in result["lines"]:
        print(line)


# --- fitting -------------------------------------------------------------------


def fit() -> dict:
    """Raw (model, group, score, right) samples from the fit half -> Platt maps."""
    c = client()
    # (score, right, photo) per model and group
    samples: dict[str, dict[str, list[tuple[float, bool, str]]]] = defaultdict(lambda: defaultdict(list))
    fit_photos = photos("fit")
    for photo, path, t in fit_photos:
        true = closure(t["labels"] + t.get("also", []))
        boxes = t.get("boxes", [])
        unboxed = t.get("more_unboxed", False)
        w = work(analysable(path))
        for name, p in c._general(w).items():
            samples["classifier"][group_of(name, ancestors(name))].append((p, name in true, photo["id"]))
        for det in c._objects(w):
            box = [det.left, det.top, det.width, det.height]
            same = [b for b in boxes if related(b["label"], det.name)]
            right = det.name in true and (unboxed or not same or any(iou(box, b["box"]) >= FIT_BOX_IOU for b in same))
            samples["detector"][group_of(det.name, ancestors(det.name))].append((det.score, right, photo["id"]))
        people = [b["box"] for b in boxes if b["label"] == "Person"]
        for det in c._faces_and_nudity(w):
            if det.name not in taxonomy.FACE_CLASSES:
                continue
            cx, cy = det.left + det.width / 2, det.top + det.height / 2
            inside = any(b[0] <= cx <= b[0] + b[2] and b[1] <= cy <= b[1] + b[3] for b in people)
            samples["faces"]["person"].append((det.score, "Person" in true and (inside or not people), photo["id"]))
    def weights(items) -> np.ndarray:
        per_photo = Counter(s[2] for s in items)
        return np.array([min(1.0, PHOTO_WEIGHT / per_photo[s[2]]) for s in items])

    def fitted(items) -> list[list[float]]:
        return logistic(np.array([s[0] for s in items]), np.array([s[1] for s in items]), weights=weights(items))

    maps, counts = {}, {}
    for model, groups in samples.items():
        everything = [s for group in groups.values() for s in group]
        maps[model] = {"*": fitted(everything)}
        counts[model] = {"*": [len(everything), int(sum(s[1] for s in everything))]}
        for group, items in sorted(groups.items()):
            counts[model][group] = [len(items), int(sum(s[1] for s in items))]
            if weights(items).sum() >= MIN_GROUP_SAMPLES:
                maps[model][group] = fitted(items)
    return {
        "method": (
            "Platt scaling: logistic regression of 'the label was right' on logit(raw score), "
            "per model and class group, slope >= 0, Gaussian prior (variance 1) towards the identity, "
            f"each photo's samples in a group weighing at most {PHOTO_WEIGHT:g} together; knots every 0.05, "
            f"linear between; a group whose samples weigh less than {MIN_GROUP_SAMPLES} uses the model's map "
            "over all groups ('*')"
        ),
        "fitted_on": f"benchmarks/quality fit half: {len(fit_photos)} photos",
        "samples": counts,
        "maps": maps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="refit photos/analysis/data/calibration.json on the fit half")
    parser.add_argument("--split", default="check", choices=["check", "fit"])
    parser.add_argument("--photos", action="store_true", help="print each photo's expected, missed and wrong labels")
    parser.add_argument(
        "--classifier", metavar="PATH",
        help="another converted EfficientNet-Lite (ONNX): fit its calibration on the fit half in memory, score the check half",
    )
    parser.add_argument("--partial", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global PARTIAL, CLASSIFIER
    PARTIAL = args.partial
    CLASSIFIER = args.classifier
    if args.classifier:
        client(Calibration(fit()["maps"]))
        report(score("check", per_photo=args.photos), f"check ({Path(args.classifier).name})")
        return
    if args.fit:
        fitted = fit()
        DATA.write_text(json.dumps(fitted, indent=1) + "\n", encoding="utf-8")
        for model, groups in fitted["samples"].items():
            print(f"{model}: " + ", ".join(f"{g} {n} samples ({r} right)" for g, (n, r) in groups.items()))
        print(f"wrote {DATA}", file=sys.stderr)
        return
    report(score(args.split, per_photo=args.photos), args.split)


if __name__ == "__main__":
    main()
