"""Text detection and recognition with RapidOCR's packaged PP-OCRv4 ONNX models.

Our own pipeline around RapidOCR's models rather than the stock ``RapidOCR`` object:
the detector runs on a downscaled image (the stock pipeline upscales the short side
to 736 px, which quadruples the work on a typical photo), the angle classifier is not
run (photos with upside-down text are rare and it costs a third model per line),
recognition is batched, and CTC time steps give WORD boxes inside each LINE, which is
what Rekognition's DetectText returns.
"""

from __future__ import annotations

import math
import os
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from .runtime import make_session, rapidocr_model_path

DET_MODEL = "ch_PP-OCRv4_det_infer.onnx"
REC_MODEL = "ch_PP-OCRv4_rec_infer.onnx"
# Detector input: the longer side is brought down to this (never up). 640 keeps text
# of ~1.5% of the image height readable while costing half of 960.
DET_MAX_SIDE = 640
DET_BIN_THRESHOLD = 0.3
DET_BOX_THRESHOLD = 0.6
DET_UNCLIP_RATIO = 1.6
REC_HEIGHT = 48
REC_MAX_WIDTH = 48 * 32
REC_BATCH = 4  # lines per session call; sorted by width so padding stays small
# Recognition time grows with every line; photos with more lines than this are
# documents, and the largest lines carry the meaning.
MAX_LINES = 60
# An ink-free stretch wider than this fraction of the character pitch is a space.
WORD_GAP_PITCH = 0.42


@dataclass(frozen=True)
class Word:
    text: str
    confidence: float  # 0-100
    polygon: tuple[tuple[float, float], ...]  # fractions of the image, clockwise from top-left


@dataclass(frozen=True)
class Line:
    text: str
    confidence: float  # 0-100
    polygon: tuple[tuple[float, float], ...]
    words: tuple[Word, ...]


class TextReader:
    def __init__(self):
        self.det = make_session(rapidocr_model_path(DET_MODEL))
        self.rec = make_session(rapidocr_model_path(REC_MODEL))
        meta = self.rec.get_modelmeta().custom_metadata_map
        # PaddleOCR's CTC convention: index 0 is the blank, the last one a space.
        self.charset = ["<blank>"] + meta["character"].splitlines() + [" "]
        self.space_index = len(self.charset) - 1

    def read(self, rgb: np.ndarray) -> list[Line]:
        """Lines of text (with words) found in an RGB uint8 image, in reading order."""
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        quads = self.detect(bgr)
        if not quads:
            return []
        height, width = bgr.shape[:2]
        crops = [_crop(bgr, q) for q in quads]
        results = self.recognize(crops)
        lines = []
        for quad, crop, (chars, probs, spans) in zip(quads, crops, results):
            if not chars:
                continue
            vertical = crop.shape[0] > 1.5 * crop.shape[1]
            line_poly = _fractions(quad, width, height)
            words = []
            centers = [crop.shape[1] * (a + b) / 2 for a, b in spans]
            pitch = float(np.median(np.diff(centers))) if len(centers) > 2 else 0.0
            breaks = [] if vertical else word_breaks(crop, pitch)
            for start, end, text, prob in _split_words(chars, probs, spans, breaks, self.space_index, self.charset):
                poly = line_poly if vertical else _sub_quad(quad, start, end, width, height)
                words.append(Word(text=text, confidence=prob * 100.0, polygon=poly))
            if not words:
                continue
            lines.append(
                Line(
                    text=" ".join(w.text for w in words),
                    confidence=float(np.mean(probs)) * 100.0,
                    polygon=line_poly,
                    words=tuple(words),
                )
            )
        return lines

    # --- detection (DB) ---------------------------------------------------------

    def detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        height, width = bgr.shape[:2]
        ratio = min(1.0, DET_MAX_SIDE / max(height, width))
        det_h = max(32, int(round(height * ratio / 32)) * 32)
        det_w = max(32, int(round(width * ratio / 32)) * 32)
        resized = cv2.resize(bgr, (det_w, det_h), interpolation=cv2.INTER_AREA)
        blob = (resized.astype(np.float32) * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)[np.newaxis]
        prob = self.det.run(None, {"x": blob})[0][0, 0]
        bitmap = (prob > DET_BIN_THRESHOLD).astype(np.uint8)
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = width / det_w, height / det_h
        quads = []
        for contour in contours[:1000]:
            (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
            if min(w, h) < 3:
                continue
            if _box_score(prob, contour) < DET_BOX_THRESHOLD:
                continue
            # DB shrinks text regions during training; grow them back by the same rule.
            grow = (w * h * DET_UNCLIP_RATIO) / (2 * (w + h))
            w, h = w + 2 * grow, h + 2 * grow
            if min(w, h) < 5:
                continue
            points = cv2.boxPoints(((cx, cy), (w, h), angle))
            points[:, 0] = (points[:, 0] * sx).clip(0, width - 1)
            points[:, 1] = (points[:, 1] * sy).clip(0, height - 1)
            quad = _order_clockwise(points)
            if np.linalg.norm(quad[0] - quad[1]) <= 3 or np.linalg.norm(quad[0] - quad[3]) <= 3:
                continue
            quads.append(quad)
        # Largest first when capping, then reading order (top to bottom, left to right).
        if len(quads) > MAX_LINES:
            quads.sort(key=lambda q: -cv2.contourArea(q))
            quads = quads[:MAX_LINES]
        quads.sort(key=lambda q: (round(float(q[0][1]) / 10), float(q[0][0])))
        return quads

    # --- recognition (CTC) ------------------------------------------------------

    def recognize(self, crops: list[np.ndarray]):
        """Per crop: (char indices, char probabilities, char spans as width fractions).

        Recognition dominates on text-heavy images, so batches run on a small thread
        pool: each session call uses one core, and the pool spreads batches over the
        cores the process may use (on one core it simply runs them in turn)."""
        ratios = [c.shape[1] / max(1, c.shape[0]) for c in crops]
        order = [int(i) for i in np.argsort(ratios)]
        batches = [order[b : b + REC_BATCH] for b in range(0, len(order), REC_BATCH)]
        results: list = [None] * len(crops)
        if len(batches) == 1:
            outputs = [self._recognize_batch(crops, ratios, batches[0])]
        else:
            outputs = list(_rec_pool().map(lambda batch: self._recognize_batch(crops, ratios, batch), batches))
        for batch, output in zip(batches, outputs):
            for i, result in zip(batch, output):
                results[i] = result
        return results

    def _recognize_batch(self, crops, ratios, batch):
        max_ratio = max(max(ratios[i] for i in batch), 320 / REC_HEIGHT)
        batch_w = min(REC_MAX_WIDTH, int(math.ceil(REC_HEIGHT * max_ratio)))
        blob = np.zeros((len(batch), 3, REC_HEIGHT, batch_w), dtype=np.float32)
        used = []
        for row, i in enumerate(batch):
            w = min(batch_w, int(math.ceil(REC_HEIGHT * ratios[i])))
            resized = cv2.resize(crops[i], (max(1, w), REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
            blob[row, :, :, :w] = resized.transpose(2, 0, 1) * (2.0 / 255.0) - 1.0
            used.append(w)
        preds = self.rec.run(None, {"x": blob})[0]  # batch x steps x classes
        steps = preds.shape[1]
        step_w = batch_w / steps
        idx = preds.argmax(axis=2)
        prob = preds.max(axis=2)
        output = []
        for row in range(len(batch)):
            seq = idx[row]
            keep = seq != 0
            keep[1:] &= seq[1:] != seq[:-1]
            positions = np.nonzero(keep)[0]
            spans = [(p * step_w / used[row], (p + 1) * step_w / used[row]) for p in positions]
            output.append((seq[positions].tolist(), prob[row, positions].tolist(), spans))
        return output


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _rec_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, len(os.sched_getaffinity(0))), thread_name_prefix="ocr-rec")
        return _pool


def _box_score(prob: np.ndarray, contour: np.ndarray) -> float:
    x, y, w, h = cv2.boundingRect(contour)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [contour.reshape(-1, 2) - (x, y)], 1)
    return float(cv2.mean(prob[y : y + h, x : x + w], mask)[0])


def _order_clockwise(points: np.ndarray) -> np.ndarray:
    by_x = points[np.argsort(points[:, 0])]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def _crop(bgr: np.ndarray, quad: np.ndarray) -> np.ndarray:
    w = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[3] - quad[2])))
    h = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    w, h = max(w, 1), max(h, 1)
    target = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad, target)
    crop = cv2.warpPerspective(bgr, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    if h > 1.5 * w:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def _fractions(quad: np.ndarray, width: int, height: int):
    return tuple((float(x / width), float(y / height)) for x, y in quad)


def _sub_quad(quad: np.ndarray, start: float, end: float, width: int, height: int):
    """The part of a line's quad between two fractions of its length."""
    start, end = max(0.0, start), min(1.0, end)
    tl, tr, br, bl = quad
    top_a, top_b = tl + (tr - tl) * start, tl + (tr - tl) * end
    bot_a, bot_b = bl + (br - bl) * start, bl + (br - bl) * end
    return _fractions(np.array([top_a, top_b, bot_b, bot_a]), width, height)


def word_breaks(crop: np.ndarray, pitch: float) -> list[float]:
    """Where the gaps between words are, as fractions of the crop's width.

    PP-OCR's recogniser (trained mostly on Chinese) often drops the spaces of Latin
    text, so words are separated by the ink: a run of ink-free columns wider than
    WORD_GAP_PITCH of the character pitch (the median distance between neighbouring
    characters, in pixels) is a space. Relative to the pitch, letter gaps stay under
    ~0.35 and spaces over ~0.5 across bold, regular and serif faces."""
    if pitch <= 0:
        return []
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    _, binary = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Ink is the minority class, whichever way round the text is printed.
    ink = binary if binary.mean() < 0.5 else 1 - binary
    height, width = ink.shape
    columns = ink.sum(axis=0) > max(1, int(0.03 * height))
    min_gap = max(2.0, WORD_GAP_PITCH * pitch)
    breaks: list[float] = []
    inked = np.nonzero(columns)[0]
    if inked.size < 2:
        return []
    gaps = np.diff(inked)
    for position in np.nonzero(gaps - 1 > min_gap)[0]:
        breaks.append((inked[position] + inked[position + 1]) / 2 / width)
    return breaks


def _split_words(chars, probs, spans, breaks, space_index, charset):
    """(start, end, text, mean prob) per word of a recognised line: words end at a
    recognised space or at an ink gap (``breaks``) between two characters."""
    centers = [(a + b) / 2 for a, b in spans]
    cut_after = set()
    for n in range(len(chars) - 1):
        if any(centers[n] < br < centers[n + 1] for br in breaks):
            cut_after.add(n)
    word: list[int] = []
    for n, c in enumerate(chars + [space_index]):
        if c != space_index and n < len(chars):
            word.append(n)
        if c == space_index or n in cut_after:
            if word:
                # NFKC folds the full-width forms the recogniser likes ("（") to ASCII.
                text = unicodedata.normalize("NFKC", "".join(charset[chars[k]] for k in word))
                yield spans[word[0]][0], spans[word[-1]][1], text, float(np.mean([probs[k] for k in word]))
            word = []


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3000 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF
    )


def looks_like_text(text: str, *, min_length: int = 2) -> bool:
    """Reject what OCR hallucinates on textures: too short, no letters or digits, mostly
    symbols, or CJK (the Chinese recogniser invents CJK characters on noise, and
    Rekognition's DetectText reads Latin-script languages, so it would not return them)."""
    chars = [c for c in text if not c.isspace()]
    if len(chars) < min_length:
        return False
    if any(_is_cjk(c) for c in chars):
        return False
    alnum = sum(1 for c in chars if c.isalnum())
    if alnum == 0 or alnum / len(chars) < 0.5:
        return False
    return all(unicodedata.category(c)[0] != "C" for c in chars)
