"""A decoder for Ultralytics YOLOv8-style detection models exported to ONNX.

NudeNet's ``320n.onnx`` is such an export, and so is any model made with
``yolo export format=onnx``: one output of shape (1, 4 + classes, anchors) holding
centre-x, centre-y, width, height in input pixels followed by per-class scores. Class
names come from the model's metadata (``names``), so any such file works unchanged.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .runtime import ModelError, make_session

LETTERBOX_FILL = 114  # Ultralytics pads with grey 114; the models are trained on it.
MAX_DETECTIONS = 300


@dataclass(frozen=True)
class Detection:
    name: str
    score: float  # 0-1
    left: float  # fractions of the image
    top: float
    width: float
    height: float
    # The same anchor's next-best classes (name, score), strongest first: what else the
    # model thought the object might be (NanoDet's only; empty for the others).
    alternatives: tuple[tuple[str, float], ...] = ()


class YoloModel:
    def __init__(self, path: Path | str, *, input_size: int | None = None):
        self.path = Path(path)
        self.session = make_session(self.path)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.names = _class_names(meta, self.path)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError(f"{self.path}: expected one NCHW image input")
        self.input_name = inputs[0].name
        self.input_size = input_size or _input_size(meta, inputs[0].shape)

    def detect(self, rgb: np.ndarray, *, min_score: float = 0.2, iou: float = 0.45) -> list[Detection]:
        """Detections on an RGB uint8 image, boxes as fractions of that image."""
        height, width = rgb.shape[:2]
        blob, scale, pad_x, pad_y = letterbox(rgb, self.input_size)
        output = self.session.run(None, {self.input_name: blob})[0]
        if output.ndim != 3 or output.shape[1] != 4 + len(self.names):
            raise ModelError(
                f"{self.path}: output shape {output.shape} does not match "
                f"4 + {len(self.names)} classes (is it a raw YOLOv8 detection export?)"
            )
        rows = output[0].T  # anchors x (4 + classes)
        class_scores = rows[:, 4:]
        class_ids = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(len(rows)), class_ids]
        keep = scores >= min_score
        if not keep.any():
            return []
        rows, class_ids, scores = rows[keep], class_ids[keep], scores[keep]
        cx, cy, bw, bh = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - pad_x) / scale
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - pad_y) / scale
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        order = nms_per_class(boxes, scores, class_ids, iou)[:MAX_DETECTIONS]
        detections = []
        for i in order:
            x1, y1, x2, y2 = boxes[i]
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            detections.append(
                Detection(
                    name=self.names[int(class_ids[i])],
                    score=float(scores[i]),
                    left=float(x1 / width),
                    top=float(y1 / height),
                    width=float((x2 - x1) / width),
                    height=float((y2 - y1) / height),
                )
            )
        return detections


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """Resize keeping aspect ratio and pad (centred) to ``size`` x ``size``; NCHW float."""
    height, width = rgb.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), LETTERBOX_FILL, dtype=np.uint8)
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    top, left = int(round(pad_y - 0.1)), int(round(pad_x - 0.1))
    canvas[top : top + new_h, left : left + new_w] = resized
    blob = canvas.transpose(2, 0, 1)[np.newaxis].astype(np.float32) / 255.0
    return blob, scale, float(left), float(top)


def nms_per_class(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression within each class; indices, best first."""
    # Shifting each class's boxes far apart makes one class-agnostic pass per-class.
    offset = class_ids[:, None].astype(np.float32) * (boxes.max() + 1.0)
    shifted = boxes + offset
    x1, y1, x2, y2 = shifted.T
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort()[::-1]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        ix1 = np.maximum(x1[i], x1[rest])
        iy1 = np.maximum(y1[i], y1[rest])
        ix2 = np.minimum(x2[i], x2[rest])
        iy2 = np.minimum(y2[i], y2[rest])
        inter = (ix2 - ix1).clip(0) * (iy2 - iy1).clip(0)
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return keep


def _class_names(meta: dict[str, str], path: Path) -> list[str]:
    raw = meta.get("names")
    if not raw:
        raise ModelError(f"{path}: no 'names' in the model metadata (not an Ultralytics export?)")
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError) as exc:
        raise ModelError(f"{path}: unreadable 'names' metadata: {exc}") from None
    if isinstance(names, dict):
        return [str(names[i]) for i in sorted(names)]
    return [str(n) for n in names]


def _input_size(meta: dict[str, str], shape) -> int:
    if meta.get("imgsz"):
        try:
            size = ast.literal_eval(meta["imgsz"])
            return int(size[0] if isinstance(size, (list, tuple)) else size)
        except (ValueError, SyntaxError, TypeError, IndexError):
            pass
    if isinstance(shape[2], int):
        return int(shape[2])
    return 640
