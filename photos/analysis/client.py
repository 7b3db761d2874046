"""LocalRekognition: Amazon Rekognition's DetectLabels, DetectModerationLabels and
DetectText, answered on this machine by models that ship inside PyPI packages.

Same method names, the same keyword arguments (validated against botocore's service
model, as boto3 does), the same response shapes, and the same error classes
(``client.exceptions.InvalidImageFormatException`` and friends are boto3's own), so
the analysis core cannot tell it from the real client.

What it can see: general labels with parents and categories (an ImageNet classifier,
EfficientNet-Lite0), objects with boxes (a COCO detector, NanoDet-g), faces and nudity
(NudeNet's YOLOv8 model), text (RapidOCR's PP-OCRv4 models), image quality and colours
(numpy/OpenCV). ``LOCAL_LABEL_MODELS`` adds Ultralytics YOLO ONNX exports. See
docs/local-detector.md for every model, its licence and what it cannot see.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.validate import ParamValidator

from . import images, properties, taxonomy
from .calibration import Calibration, group_of
from .calibration import default as default_calibration
from .evidence import CROP_MIN_PIXELS, Evidence, Kinds, reconcile
from .general import Classifier, ObjectDetector, Vocabulary
from .models import MODELS, verified_path
from .ocr import TextReader, looks_like_text
from .runtime import load_once, nudenet_model_path, package_version
from .yolo import Detection, YoloModel

Reader = Callable[[str, str, "str | None"], bytes]

BYTES_LIMIT = 5 * 1024 * 1024  # Rekognition: 5 MB as Bytes
S3_LIMIT = 15 * 1024 * 1024  # Rekognition: 15 MB from S3
DETECTOR_FLOOR = 0.2  # NudeNet's own floor; callers' MinConfidence applies on top
EXTRA_MODEL_FLOOR = 0.25
OBJECT_FLOOR = 0.25  # raw NanoDet score; calibrated well under any MinConfidence in use
CLASSIFIER_FLOOR = 0.05  # aggregated probability; MinConfidence applies on top
MAX_WORDS = 100  # DetectText returns at most 100 words
# The three calls of one analysis share one decode and one pass of each model; entries
# live long enough for the sibling calls, which arrive within milliseconds.
CACHE_ENTRIES = 4
CACHE_SECONDS = 60.0

_botocore_client = None
_botocore_lock = threading.Lock()


def _service_client():
    """A botocore Rekognition client used only for its service model and exception
    classes; it never sends a request."""
    global _botocore_client
    with _botocore_lock:
        if _botocore_client is None:
            session = botocore.session.get_session()
            _botocore_client = session.create_client(
                "rekognition",
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
            )
        return _botocore_client


def label_model_paths_from_env() -> list[str]:
    raw = os.environ.get("LOCAL_LABEL_MODELS", "")
    return [p.strip() for p in raw.replace(",", os.pathsep).split(os.pathsep) if p.strip()]


class LocalRekognition:
    engine_name = "local"

    def __init__(
        self,
        *,
        reader: Reader | None = None,
        label_models: list[str] | None = None,
        classifier: str | None = None,
        calibration: Calibration | None = None,
    ):
        """``reader(bucket, name, version) -> bytes`` serves ``Image={"S3Object": ...}``
        requests (the Django worker passes one backed by its storage). ``classifier`` (an
        ONNX EfficientNet-Lite path) and ``calibration`` replace the shipped ones, for the
        evaluation benchmark's comparisons."""
        self._reader = reader
        self._classifier_path = classifier
        self._calibration = calibration
        self._label_model_paths = (
            label_model_paths_from_env() if label_models is None else list(label_models)
        )
        service = _service_client()
        self.meta = service.meta
        self.exceptions = service.exceptions
        self._validator = ParamValidator()
        self._cache: OrderedDict[str, tuple[float, _ImageWork]] = OrderedDict()
        self._cache_lock = threading.Lock()

    # --- models -------------------------------------------------------------

    @property
    def faces_model(self) -> YoloModel:
        return load_once(("yolo", str(nudenet_model_path())), lambda: YoloModel(nudenet_model_path()))

    @property
    def text_reader(self) -> TextReader:
        return load_once(("ocr",), TextReader)

    @property
    def label_models(self) -> list[YoloModel]:
        return [load_once(("yolo", p), lambda p=p: YoloModel(p)) for p in self._label_model_paths]

    @property
    def vocabulary(self) -> Vocabulary:
        return load_once(("vocabulary",), Vocabulary)

    @property
    def classifier(self) -> Classifier:
        if self._classifier_path:
            return load_once(("classifier", self._classifier_path), lambda: Classifier(self._classifier_path))
        return load_once(("classifier",), lambda: Classifier(verified_path("efficientnet-lite0")))

    @property
    def object_detector(self) -> ObjectDetector:
        return load_once(
            ("objects",), lambda: ObjectDetector(verified_path("nanodet-g"), self.vocabulary.coco_classes)
        )

    def warm(self) -> None:
        """Load every model now (worker start-up) rather than on the first photo, two at
        a time: checking a file's sha256 and building an onnxruntime session release the
        GIL, so the loads overlap on a second core."""
        from concurrent.futures import ThreadPoolExecutor

        loaders = [
            lambda: self.faces_model,
            lambda: self.text_reader,
            lambda: self.classifier,
            lambda: self.object_detector,
            lambda: self.label_models,
        ]
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(load) for load in loaders]:
                future.result()

    def clear_cache(self) -> None:
        """Forget per-image results (benchmarks use it to measure cold analyses)."""
        with self._cache_lock:
            self._cache.clear()

    @property
    def model_versions(self) -> dict[str, str]:
        extra = "".join(f"+{os.path.basename(p)}" for p in self._label_model_paths)
        general = "".join(f"+{name}-{spec.sha256[:8]}" for name, spec in MODELS.items())
        return {
            "labels": f"local:nudenet-{package_version('nudenet')}{general}{extra}",
            "moderation": f"local:nudenet-{package_version('nudenet')}",
            "text": f"local:rapidocr-{package_version('rapidocr-onnxruntime')}-ppocrv4",
        }

    # --- the Rekognition API --------------------------------------------------

    def detect_labels(self, **params: Any) -> dict[str, Any]:
        self._validate("DetectLabels", params)
        work = self._work("DetectLabels", params["Image"])
        min_conf = float(params.get("MinConfidence", 55.0))
        features = params.get("Features") or ["GENERAL_LABELS"]
        settings = params.get("Settings") or {}
        response: dict[str, Any] = {"LabelModelVersion": self.model_versions["labels"]}
        labels: list[dict[str, Any]] = []
        if "GENERAL_LABELS" in features:
            labels = self._labels(work, min_conf, settings.get("GeneralLabels") or {})
            max_labels = params.get("MaxLabels")
            if max_labels is not None:
                labels = labels[:max_labels]
        response["Labels"] = labels
        if "IMAGE_PROPERTIES" in features:
            count = (settings.get("ImageProperties") or {}).get("MaxDominantColors", 10)
            response["ImageProperties"] = {
                "Quality": work.get("quality", lambda: properties.quality(work.image.rgb)),
                "DominantColors": work.get(
                    f"colors{count}", lambda: properties.dominant_colors(work.image.rgb, count=count)
                ),
            }
        return response

    def detect_moderation_labels(self, **params: Any) -> dict[str, Any]:
        self._validate("DetectModerationLabels", params)
        work = self._work("DetectModerationLabels", params["Image"])
        min_conf = float(params.get("MinConfidence", 50.0))
        scores: dict[str, float] = {}
        for det in self._faces_and_nudity(work):
            name = taxonomy.NUDENET_MODERATION.get(det.name)
            if name:
                scores[name] = max(scores.get(name, 0.0), det.score * 100.0)
        labels = [
            {
                "Name": name,
                "Confidence": confidence,
                "ParentName": taxonomy.MODERATION_TAXONOMY[name][0],
                "TaxonomyLevel": taxonomy.MODERATION_TAXONOMY[name][1],
            }
            for name, confidence in taxonomy.moderation_with_ancestors(scores).items()
            if confidence >= min_conf
        ]
        labels.sort(key=lambda x: (-x["Confidence"], x["TaxonomyLevel"]))
        return {"ModerationLabels": labels, "ModerationModelVersion": self.model_versions["moderation"]}

    def detect_text(self, **params: Any) -> dict[str, Any]:
        self._validate("DetectText", params)
        work = self._work("DetectText", params["Image"])
        filters = params.get("Filters") or {}
        word_filter = filters.get("WordFilter") or {}
        min_conf = float(word_filter.get("MinConfidence", 50.0))
        min_w = float(word_filter.get("MinBoundingBoxWidth", 0.0))
        min_h = float(word_filter.get("MinBoundingBoxHeight", 0.0))
        regions = [_region_bounds(r) for r in filters.get("RegionsOfInterest") or []]

        lines_out: list[dict[str, Any]] = []
        words_out: list[dict[str, Any]] = []
        for line in self._lines(work):
            kept = []
            for word in line.words:
                geometry = _geometry(word.polygon)
                box = geometry["BoundingBox"]
                if (
                    word.confidence >= min_conf
                    and box["Width"] >= min_w
                    and box["Height"] >= min_h
                    and looks_like_text(word.text, min_length=1)
                    and _in_regions(box, regions)
                ):
                    kept.append((word, geometry))
            if not kept or len(words_out) + len(kept) > MAX_WORDS:
                continue
            line_id = len(lines_out)
            lines_out.append(
                {
                    "DetectedText": " ".join(w.text for w, _ in kept),
                    "Type": "LINE",
                    "Id": line_id,
                    "Confidence": line.confidence,
                    "Geometry": _geometry(line.polygon),
                }
            )
            words_out.extend(
                {"DetectedText": w.text, "Type": "WORD", "Confidence": w.confidence, "Geometry": g, "ParentId": line_id}
                for w, g in kept
            )
        for n, word in enumerate(words_out):
            word["Id"] = len(lines_out) + n
        return {"TextDetections": lines_out + words_out, "TextModelVersion": self.model_versions["text"]}

    # --- shared per-image work ------------------------------------------------

    def _faces_and_nudity(self, work: _ImageWork) -> list[Detection]:
        return work.get("nudenet", lambda: self.faces_model.detect(work.image.rgb, min_score=DETECTOR_FLOOR))

    def _lines(self, work: _ImageWork):
        def read():
            return [
                line
                for line in self.text_reader.read(work.image.rgb)
                if looks_like_text(line.text)
            ]

        return work.get("ocr", read)

    def _general(self, work: _ImageWork) -> dict[str, float]:
        """The classifier's label probabilities (0-1) for the whole image."""

        def classify():
            scores = self.vocabulary.aggregate(self.classifier.probabilities(work.image.rgb))
            return {name: p for name, p in scores.items() if p >= CLASSIFIER_FLOOR}

        return work.get("classifier", classify)

    def _crop_general(self, work: _ImageWork, det: Detection) -> dict[str, float]:
        """The classifier's label probabilities (0-1) for one box, cropped with a margin
        and widened towards a square (the classifier sees a centre square)."""
        key = f"crop:{det.left:.4f},{det.top:.4f},{det.width:.4f},{det.height:.4f}"

        def classify():
            rgb = work.image.rgb
            height, width = rgb.shape[:2]
            w, h = det.width * width, det.height * height
            half = max(w, h) * 1.15 / 2
            cx, cy = (det.left + det.width / 2) * width, (det.top + det.height / 2) * height
            x1, x2 = int(max(0, cx - half)), int(min(width, cx + half))
            y1, y2 = int(max(0, cy - half)), int(min(height, cy + half))
            if min(x2 - x1, y2 - y1) < CROP_MIN_PIXELS:
                return {}
            scores = self.vocabulary.aggregate(self.classifier.probabilities(rgb[y1:y2, x1:x2]))
            return {name: p for name, p in scores.items() if p >= CLASSIFIER_FLOOR}

        return work.get(key, classify)

    def _objects(self, work: _ImageWork) -> list[Detection]:
        return work.get("objects", lambda: self.object_detector.detect(work.image.rgb, min_score=OBJECT_FLOOR))

    def _group(self, name: str) -> str:
        meta = taxonomy.LABELS.get(name) or self.vocabulary.meta(name)
        return group_of(name, meta["parents"])

    @property
    def kinds(self) -> Kinds:
        def build() -> Kinds:
            ancestors = {name: meta["parents"] for name, meta in self.vocabulary.labels.items()}
            ancestors.update({name: meta["parents"] for name, meta in taxonomy.LABELS.items()})
            return Kinds(ancestors, self._group)

        return load_once(("kinds",), build)

    def label_evidence(self, work: _ImageWork, calibration: Calibration | None = None) -> list[Evidence]:
        """Every model's labels for the image, calibrated and reconciled (unfiltered)."""
        calibrate = calibration or self._calibration or default_calibration()
        vocabulary = self.vocabulary

        def classifier_labels(probabilities: dict[str, float]) -> dict[str, float]:
            return {n: calibrate("classifier", self._group(n), p) for n, p in probabilities.items()}

        boxes = [
            Evidence(det.name, calibrate("detector", self._group(det.name), det.score), "detector", det)
            for det in self._objects(work)
        ]
        general, boxes = reconcile(
            classifier_labels(self._general(work)),
            boxes,
            lambda det: classifier_labels(self._crop_general(work, det)),
            self.kinds,
            vocabulary.descendants,
            lambda name, raw: calibrate("detector", self._group(name), raw),
            vocabulary.names_a_class,
        )
        evidence = [Evidence(name, confidence, "classifier") for name, confidence in general.items()]
        for item in boxes:
            evidence.append(item)
            evidence.extend(Evidence(p, item.confidence, "detector") for p in vocabulary.meta(item.name)["parents"])
        bodies = any(item.name == "Person" for item in boxes)
        for det in self._faces_and_nudity(work):
            if det.name in taxonomy.FACE_CLASSES:
                confidence = calibrate("faces", "person", det.score)
                evidence.append(Evidence("Face", confidence, "faces", det))
                # Without a body box from the detector, the face is the evidence of the
                # person, and its box the Person instance.
                evidence.append(Evidence("Person", confidence, "faces", None if bodies else det))
                evidence.append(Evidence("Head", confidence, "faces"))
        for index, model in enumerate(self.label_models):
            detections = work.get(
                f"extra{index}", lambda m=model: m.detect(work.image.rgb, min_score=EXTRA_MODEL_FLOOR)
            )
            evidence.extend(Evidence(taxonomy.label_name(det.name), det.score * 100.0, "extra", det) for det in detections)
        lines = self._lines(work)
        if lines:
            evidence.append(Evidence("Text", max(line.confidence for line in lines), "text"))
        return evidence

    def _labels(self, work: _ImageWork, min_conf: float, filters: dict[str, Any]) -> list[dict[str, Any]]:
        vocabulary = self.vocabulary
        found: dict[str, dict[str, Any]] = {}

        def add(name: str, confidence: float, det: Detection | None = None):
            meta = taxonomy.LABELS.get(name) or vocabulary.meta(name)
            label = found.setdefault(
                name,
                {
                    "Name": name,
                    "Confidence": 0.0,
                    "Instances": [],
                    "Parents": [{"Name": p} for p in meta["parents"]],
                    "Aliases": [{"Name": a} for a in meta["aliases"]],
                    "Categories": [{"Name": c} for c in meta["categories"]],
                },
            )
            label["Confidence"] = max(label["Confidence"], confidence)
            if det is not None:
                label["Instances"].append({"BoundingBox": _det_box(det), "Confidence": confidence})

        for item in self.label_evidence(work):
            add(item.name, item.confidence, item.det)
        # A parent is at least as likely as its child (the maps of two groups can differ).
        for label in sorted(found.values(), key=lambda x: -x["Confidence"]):
            for parent in label["Parents"]:
                add(parent["Name"], label["Confidence"])

        include = {f for f in filters.get("LabelInclusionFilters", [])}
        exclude = {f for f in filters.get("LabelExclusionFilters", [])}
        cat_include = {f for f in filters.get("LabelCategoryInclusionFilters", [])}
        cat_exclude = {f for f in filters.get("LabelCategoryExclusionFilters", [])}
        labels = []
        for label in found.values():
            categories = {c["Name"] for c in label["Categories"]}
            if label["Confidence"] < min_conf:
                continue
            if (include and label["Name"] not in include) or label["Name"] in exclude:
                continue
            if (cat_include and not categories & cat_include) or categories & cat_exclude:
                continue
            label["Instances"] = [i for i in label["Instances"] if i["Confidence"] >= min_conf]
            labels.append(label)
        labels.sort(key=lambda x: (-x["Confidence"], len(x["Parents"])))  # on a tie, a parent first
        return labels

    def _work(self, operation: str, image: dict[str, Any]) -> _ImageWork:
        if "Bytes" in image and "S3Object" in image:
            raise self._error("InvalidParameterException", "Give either Bytes or S3Object, not both.", operation)
        if "Bytes" in image:
            data = image["Bytes"]
            if len(data) > BYTES_LIMIT:
                raise self._error(
                    "ImageTooLargeException", f"Image is {len(data)} bytes; at most {BYTES_LIMIT} as Bytes.", operation
                )
            cache_key = "b:" + hashlib.blake2b(data, digest_size=16).hexdigest()
            fetch = lambda: data  # noqa: E731
        elif "S3Object" in image:
            s3 = image["S3Object"]
            bucket, name, version = s3.get("Bucket", ""), s3.get("Name", ""), s3.get("Version")
            cache_key = f"s3:{bucket}/{name}@{version or ''}"
            fetch = lambda: self._read_s3(operation, bucket, name, version)  # noqa: E731
        else:
            raise self._error("InvalidParameterException", "Image needs Bytes or S3Object.", operation)

        now = time.monotonic()
        with self._cache_lock:
            for key in [k for k, (t, _) in self._cache.items() if now - t > CACHE_SECONDS]:
                del self._cache[key]
            entry = self._cache.get(cache_key)
            if entry is None:
                entry = (now, _ImageWork(fetch))
                self._cache[cache_key] = entry
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
            work = entry[1]
        try:
            work.image  # noqa: B018 - decode (once) so input errors surface per call
        except images.ImageInputError as exc:
            raise self._error(exc.code, str(exc), operation) from None
        except _S3ReadError as exc:
            raise self._error(exc.code, str(exc), operation) from None
        return work

    def _read_s3(self, operation: str, bucket: str, name: str, version: str | None) -> bytes:
        if self._reader is None:
            raise _S3ReadError("InvalidS3ObjectException", "This LocalRekognition has no storage reader for S3Object.")
        try:
            data = self._reader(bucket, name, version)
        except (FileNotFoundError, KeyError, PermissionError, OSError) as exc:
            raise _S3ReadError("InvalidS3ObjectException", f"Unable to get object metadata from S3: {exc}") from None
        if len(data) > S3_LIMIT:
            raise _S3ReadError("ImageTooLargeException", f"Object is {len(data)} bytes; at most {S3_LIMIT} from S3.")
        return data

    def _validate(self, operation: str, params: dict[str, Any]) -> None:
        shape = self.meta.service_model.operation_model(operation).input_shape
        report = self._validator.validate(params, shape)
        if report.has_errors():
            raise ParamValidationError(report=report.generate_report())

    def _error(self, code: str, message: str, operation: str):
        cls = getattr(self.exceptions, code)
        return cls({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


class _S3ReadError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class _ImageWork:
    """Decoded image plus each model's output, each computed at most once even when
    the three API calls ask for them from three threads at the same moment."""

    def __init__(self, fetch: Callable[[], bytes]):
        self._fetch = fetch
        self._values: dict[str, Any] = {}
        self._errors: dict[str, BaseException] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @property
    def image(self) -> images.WorkingImage:
        return self.get("image", lambda: images.decode(self._fetch()))

    def get(self, name: str, compute: Callable[[], Any]) -> Any:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name in self._errors:
                raise self._errors[name]
            if name not in self._values:
                try:
                    self._values[name] = compute()
                except (images.ImageInputError, _S3ReadError) as exc:
                    # Deterministic input errors are remembered; anything else
                    # (e.g. a storage hiccup) is retried by the next caller.
                    self._errors[name] = exc
                    raise
            return self._values[name]


def _det_box(det: Detection) -> dict[str, float]:
    return {"Width": det.width, "Height": det.height, "Left": det.left, "Top": det.top}


def _geometry(polygon) -> dict[str, Any]:
    xs = [min(1.0, max(0.0, x)) for x, _ in polygon]
    ys = [min(1.0, max(0.0, y)) for _, y in polygon]
    return {
        "BoundingBox": {"Width": max(xs) - min(xs), "Height": max(ys) - min(ys), "Left": min(xs), "Top": min(ys)},
        "Polygon": [{"X": x, "Y": y} for x, y in zip(xs, ys)],
    }


def _region_bounds(region: dict[str, Any]) -> tuple[float, float, float, float]:
    if "BoundingBox" in region:
        b = region["BoundingBox"]
        return b.get("Left", 0.0), b.get("Top", 0.0), b.get("Left", 0.0) + b.get("Width", 1.0), b.get("Top", 0.0) + b.get("Height", 1.0)
    xs = [p["X"] for p in region.get("Polygon", [])] or [0.0, 1.0]
    ys = [p["Y"] for p in region.get("Polygon", [])] or [0.0, 1.0]
    return min(xs), min(ys), max(xs), max(ys)


def _in_regions(box: dict[str, float], regions) -> bool:
    if not regions:
        return True
    cx, cy = box["Left"] + box["Width"] / 2, box["Top"] + box["Height"] / 2
    return any(x1 <= cx <= x2 and y1 <= cy <= y2 for x1, y1, x2, y2 in regions)
