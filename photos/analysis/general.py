"""General labels: an ImageNet classifier and a COCO object detector, in Rekognition's terms.

- ``Vocabulary``: the generated label table (``data/labels.json``): each ImageNet class's
  label name, every label's parents, categories and aliases, COCO's class names.
- ``Classifier``: EfficientNet-Lite0 (ImageNet-1k). Its class probabilities are summed up
  the label tree, so three cat classes at 38 / 36 / 17 % give "Cat" at 91 %.
- ``ObjectDetector``: NanoDet-g (COCO-80) with boxes. Its raw quality-focal scores, like
  the classifier's probabilities, are put on one scale by ``calibration``.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from .runtime import ModelError, make_session
from .yolo import Detection, nms_per_class

DATA = Path(__file__).resolve().parent / "data" / "labels.json"


class Vocabulary:
    def __init__(self, path: Path = DATA):
        data = json.loads(path.read_text(encoding="utf-8"))
        self.classes: list[str] = data["classes"]
        self.coco_classes: list[str] = data["coco_classes"]
        self.labels: dict[str, dict[str, list[str]]] = data["labels"]
        self.names = sorted(self.labels)
        self._class_closure = {n for c in self.classes for n in (c, *self.labels[c]["parents"])}
        self._descendants: dict[str, set[str]] = {}
        for label, meta in self.labels.items():
            for parent in meta["parents"]:
                self._descendants.setdefault(parent, set()).add(label)
        index = {name: i for i, name in enumerate(self.names)}
        # membership[label, class] = 1 when the class is the label or one of its descendants
        self.membership = np.zeros((len(self.names), len(self.classes)), dtype=np.float32)
        for c, name in enumerate(self.classes):
            for member in {name, *self.labels[name]["parents"]}:
                self.membership[index[member], c] = 1.0

    def aggregate(self, probabilities: np.ndarray) -> dict[str, float]:
        """Probability of every label: the sum over the classes under it (0-1)."""
        scores = self.membership @ probabilities.astype(np.float32)
        return {self.names[i]: float(min(1.0, scores[i])) for i in np.flatnonzero(scores > 1e-4)}

    def names_a_class(self, name: str) -> bool:
        """Whether the classifier can say ``name``: it is an ImageNet class's label or above one."""
        return name in self._class_closure

    def descendants(self, name: str) -> set[str]:
        """Every label with ``name`` among its parents (which list every ancestor)."""
        return set(self._descendants.get(name, ()))

    def meta(self, name: str) -> dict[str, list[str]]:
        return self.labels.get(name, {"parents": [], "categories": [], "aliases": []})


class Classifier:
    """EfficientNet-Lite: the image resized to 1/0.875 of the model's input on the short
    side, the centre square cropped (the evaluation protocol it was trained for)."""

    def __init__(self, path: Path | str):
        self.session = make_session(path)
        inputs = self.session.get_inputs()
        shape = list(inputs[0].shape)[1:] if len(inputs) == 1 else []
        if len(shape) != 3 or shape[0] != 3 or shape[1] != shape[2] or not isinstance(shape[1], int):
            raise ModelError(f"{path}: expected one (1, 3, N, N) input")
        self.input_name = inputs[0].name
        self.size = shape[1]  # 224 for Lite0, 240 for Lite1, 260 for Lite2

    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        scale = (self.size / 0.875) / min(height, width)
        new_w, new_h = max(self.size, round(width * scale)), max(self.size, round(height * scale))
        resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        top, left = (new_h - self.size) // 2, (new_w - self.size) // 2
        crop = resized[top : top + self.size, left : left + self.size]
        blob = np.ascontiguousarray(crop.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
        return self.session.run(None, {self.input_name: blob})[0][0]


class ObjectDetector:
    """NanoDet-g at 416 px: letterboxed, BGR normalised with its training mean/std;
    boxes decoded from the distribution over 11 bins per side (Generalized Focal Loss)."""

    SIZE = 416
    ALTERNATIVES = 3  # next-best classes kept per detection
    ALTERNATIVE_FLOOR = 0.05
    STRIDES = (8, 16, 32)
    BINS = 11
    MEAN = np.array([103.53, 116.28, 123.675], np.float32)
    STD = np.array([57.375, 57.12, 58.395], np.float32)

    def __init__(self, path: Path | str, names: list[str]):
        self.session = make_session(path)
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        if set(outputs) != {"scores", "distances"} or outputs["scores"][2] != len(names):
            raise ModelError(f"{path}: expected outputs scores (.., {len(names)}) and distances")
        self.names = names
        self.input_name = self.session.get_inputs()[0].name

    @cached_property
    def _centres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs, ys, strides = [], [], []
        for stride in self.STRIDES:
            cells = self.SIZE // stride
            yy, xx = np.mgrid[0:cells, 0:cells]
            xs.append(((xx.ravel() + 0.5) * stride).astype(np.float32))
            ys.append(((yy.ravel() + 0.5) * stride).astype(np.float32))
            strides.append(np.full(cells * cells, stride, np.float32))
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(strides)

    def detect(self, rgb: np.ndarray, *, min_score: float = 0.25, iou: float = 0.6) -> list[Detection]:
        height, width = rgb.shape[:2]
        scale = min(self.SIZE / height, self.SIZE / width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        canvas = np.zeros((self.SIZE, self.SIZE, 3), np.uint8)
        top, left = (self.SIZE - new_h) // 2, (self.SIZE - new_w) // 2
        canvas[top : top + new_h, left : left + new_w] = resized
        blob = (canvas[..., ::-1].astype(np.float32) - self.MEAN) / self.STD
        blob = np.ascontiguousarray(blob.transpose(2, 0, 1)[np.newaxis])
        scores, distances = self.session.run(["scores", "distances"], {self.input_name: blob})
        scores, distances = scores[0], distances[0]
        class_ids = scores.argmax(axis=1)
        best = scores[np.arange(len(scores)), class_ids]
        keep = np.flatnonzero(best >= min_score)
        if not keep.size:
            return []
        bins = distances[keep].reshape(-1, 4, self.BINS)
        bins = np.exp(bins - bins.max(axis=2, keepdims=True))
        sides = (bins / bins.sum(axis=2, keepdims=True)) @ np.arange(self.BINS, dtype=np.float32)
        cx, cy, stride = (a[keep] for a in self._centres)
        sides = sides * stride[:, None]
        boxes = np.stack([cx - sides[:, 0], cy - sides[:, 1], cx + sides[:, 2], cy + sides[:, 3]], axis=1)
        boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - left) / scale).clip(0, width)
        boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - top) / scale).clip(0, height)
        kept_scores, kept_ids = best[keep], class_ids[keep]
        detections = []
        for i in nms_per_class(boxes, kept_scores, kept_ids, iou)[:100]:
            x1, y1, x2, y2 = boxes[i]
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            row = scores[keep[i]]
            others = [int(c) for c in np.argsort(-row)[1 : 1 + self.ALTERNATIVES] if row[c] >= self.ALTERNATIVE_FLOOR]
            detections.append(
                Detection(
                    name=self.names[int(kept_ids[i])],
                    score=float(kept_scores[i]),
                    left=float(x1 / width),
                    top=float(y1 / height),
                    width=float((x2 - x1) / width),
                    height=float((y2 - y1) / height),
                    alternatives=tuple((self.names[c], float(row[c])) for c in others),
                )
            )
        return detections
