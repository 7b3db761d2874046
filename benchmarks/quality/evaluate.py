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
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fetch import HERE, fetch_all, manifest

TRUTH = HERE / "truth"
DISPLAY_THRESHOLD = 70.0  # settings.LABEL_DISPLAY_THRESHOLD's default
BOX_IOU = 0.5
FIT_BOX_IOU = 0.4  # a detection counts as right for fitting when it overlaps a true box this much
MIN_GROUP_SAMPLES = 25
PHOTO_WEIGHT = 5.0  # one photo's samples in a group weigh at most this much together  # fewer fitted samples in a group: the model's map over all groups
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


def client():
    global _client
    if _client is None:
        from photos.analysis import LocalRekognition

        _client = LocalRekognition(label_models=[])
        _client.warm()
    return _client


def analysable(path: Path) -> bytes:
    """The bytes the pipeline would analyse: JPEG and PNG as stored, anything else
    through the analysis rendition (as the worker and the Lambda do)."""
    from PIL import Image

    from infra.functions.labeler.rendition import analysis_rendition, register_decoders

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


def predict(path: Path, calibration=None) -> list[Shown]:
    c = client()
    items = c.label_evidence(work(analysable(path)), calibration)
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
    from photos.analysis import taxonomy

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


def score(split: str, *, calibration=None, per_photo: bool = False) -> dict:
    from photos.analysis.calibration import group_of

    c = client()
    reach = model_names()
    totals = Counter()
    per_model = {m: Counter() for m in MODELS}
    confusions = Counter()
    lines = []
    for photo, path, t in photos(split):
        true = closure(t["labels"] + t.get("also", []))
        required = list(t["labels"])
        data = analysable(path)
        response = c.detect_labels(Image={"Bytes": data}, MinConfidence=DISPLAY_THRESHOLD) if calibration is None else None
        items = predict(path, calibration)
        if response is not None:
            shown = {lb["Name"] for lb in response["Labels"]}
            instances = [
                (lb["Name"], [i["BoundingBox"][k] for k in ("Left", "Top", "Width", "Height")])
                for lb in response["Labels"]
                for i in lb["Instances"]
            ]
        else:
            shown = {s.name for s in items if s.shown}
            instances = [(s.name, s.box) for s in items if s.shown and s.box]
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
        boxes = t.get("boxes", [])
        matched = set()
        for b in boxes:
            hit = next(
                (j for j, (n, box) in enumerate(instances) if j not in matched and n == b["label"] and iou(box, b["box"]) >= BOX_IOU),
                None,
            )
            totals["boxes"] += 1
            if hit is not None:
                matched.add(hit)
                totals["boxes_found"] += 1
        if not t.get("more_unboxed"):
            boxed = {b["label"] for b in boxes}
            considered = [j for j, (n, _) in enumerate(instances) if n in boxed]
            totals["instances"] += len(considered)
            totals["instances_right"] += sum(j in matched for j in considered)
        # per model
        for model in MODELS:
            names = {s.name for s in items if s.model == model and s.shown}
            in_reach = [r for r in required if r in reach[model] or any(r in ancestors(n) for n in reach[model] if n == r)]
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
    return {"totals": totals, "per_model": per_model, "confusions": confusions, "lines": lines}


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
    print("  top confusions (expected -> shown instead):")
    for (expected, wrong), count in result["confusions"].most_common(10):
        print(f"    {count} x {expected} -> {wrong}")
    for line in result["lines"]:
        print(line)


# --- fitting -------------------------------------------------------------------


def fit() -> dict:
    """Raw (model, group, score, right) samples from the fit half -> isotonic maps."""
    from photos.analysis.calibration import group_of, logistic

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
            same = [b for b in boxes if b["label"] == det.name]
            right = det.name in true and (unboxed or not same or any(iou(box, b["box"]) >= FIT_BOX_IOU for b in same))
            samples["detector"][group_of(det.name, ancestors(det.name))].append((det.score, right, photo["id"]))
        people = [b["box"] for b in boxes if b["label"] == "Person"]
        for det in c._faces_and_nudity(w):
            from photos.analysis import taxonomy

            if det.name not in taxonomy.FACE_CLASSES:
                continue
            cx, cy = det.left + det.width / 2, det.top + det.height / 2
            inside = any(b[0] <= cx <= b[0] + b[2] and b[1] <= cy <= b[1] + b[3] for b in people)
            samples["faces"]["person"].append((det.score, "Person" in true and (inside or not people), photo["id"]))
    def fitted(items) -> list[list[float]]:
        per_photo = Counter(s[2] for s in items)
        weights = np.array([min(1.0, PHOTO_WEIGHT / per_photo[s[2]]) for s in items])
        return logistic(np.array([s[0] for s in items]), np.array([s[1] for s in items]), weights=weights)

    maps, counts = {}, {}
    for model, groups in samples.items():
        everything = [s for group in groups.values() for s in group]
        maps[model] = {"*": fitted(everything)}
        counts[model] = {"*": [len(everything), int(sum(s[1] for s in everything))]}
        for group, items in sorted(groups.items()):
            counts[model][group] = [len(items), int(sum(s[1] for s in items))]
            if len(items) >= MIN_GROUP_SAMPLES:
                maps[model][group] = fitted(items)
    return {
        "method": (
            "Platt scaling: logistic regression of 'the label was right' on logit(raw score), "
            "per model and class group, slope >= 0, Gaussian prior (variance 1) towards the identity, "
            f"each photo's samples in a group weighing at most {PHOTO_WEIGHT:g} together; knots every 0.05, "
            f"linear between; a group with fewer than {MIN_GROUP_SAMPLES} samples uses the model's map "
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
    parser.add_argument("--partial", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global PARTIAL
    PARTIAL = args.partial
    if args.fit:
        from photos.analysis.calibration import DATA

        fitted = fit()
        DATA.write_text(json.dumps(fitted, indent=1) + "\n", encoding="utf-8")
        for model, groups in fitted["samples"].items():
            print(f"{model}: " + ", ".join(f"{g} {n} samples ({r} right)" for g, (n, r) in groups.items()))
        print(f"wrote {DATA}", file=sys.stderr)
        return
    report(score(args.split, per_photo=args.photos), args.split)


if __name__ == "__main__":
    main()
