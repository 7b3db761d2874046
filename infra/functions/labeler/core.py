"""The analysis core: one image in, one LabelRecord out.

Pure: no Django, no AWS resources beyond the ``client`` it is given, which is anything
with boto3 Rekognition's ``detect_labels``, ``detect_moderation_labels`` and
``detect_text`` (the boto3 client in Lambda, LocalRekognition in the local worker).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Mapping

from .record import (
    STATUS_FAILED,
    STATUS_LABELED,
    AnalysisError,
    Box,
    Color,
    Instance,
    Label,
    LabelRecord,
    ModerationLabel,
    Properties,
    TextDetection,
    now_iso,
)

# Rekognition refuses these images for good: retrying cannot help, so they become a
# FAILED record that says why.
REJECTION_CODES = frozenset(
    {
        "InvalidImageFormatException",
        "ImageTooLargeException",
        "InvalidS3ObjectException",
        "InvalidParameterException",
    }
)
# Rejections an analysis rendition (a JPEG within the limits) gets past: over 10,000 px a
# side, or a file whose name says JPEG/PNG but whose bytes are another format.
RENDITION_HELPS = frozenset({"ImageTooLargeException", "InvalidImageFormatException"})
# Worth retrying with backoff; the caller (Lambda batch, Celery task) does that. The
# throttling codes are those botocore's standard retry mode treats as throttling (S3 says
# SlowDown, DynamoDB RequestLimitExceeded, Rekognition ThrottlingException); the server
# codes are each service's own spelling (S3 says InternalError and ServiceUnavailable,
# not ...Exception). Any HTTP 5xx or 429 is transient whatever its code.
THROTTLING_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "RequestThrottled",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
        "BandwidthLimitExceeded", "LimitExceededException", "SlowDown", "PriorRequestNotComplete",
    }
)
SERVER_CODES = frozenset(
    {
        "InternalServerError", "InternalError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
        "RequestTimeout", "RequestTimeoutException",
    }
)
TRANSIENT_CODES = THROTTLING_CODES | SERVER_CODES | frozenset(
    {
        # DynamoDB transactions: a conflict with another write, or a cancellation the
        # record writer did not decide itself (its own conditions are handled there).
        "TransactionConflictException",
        "TransactionCanceledException",
        "TransactionInProgressException",
    }
)
# Failures with no error code: the connection, or the body read after a good answer
# (botocore retries neither a streamed body nor, past its budget, a timeout).
TRANSIENT_EXCEPTIONS = frozenset(
    {
        "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
        "IncompleteReadError", "ResponseStreamingError", "ProtocolError",
    }
)


class ImageRejected(Exception):
    """Internal: a call was rejected with one of REJECTION_CODES."""


@dataclass(frozen=True)
class ImageRef:
    """Which image to analyse and the facts the record keeps about it.

    Give ``data`` to send the bytes (local worker), or leave it None to let
    Rekognition read ``bucket``/``key`` (optionally ``version``) from S3.
    """

    bucket: str
    key: str
    etag: str = ""
    size: int = 0
    version: str | None = None
    data: bytes | None = None

    def request(self) -> dict[str, Any]:
        if self.data is not None:
            return {"Bytes": self.data}
        s3 = {"Bucket": self.bucket, "Name": self.key}
        if self.version:
            s3["Version"] = self.version
        return {"S3Object": s3}


@dataclass(frozen=True)
class AnalyzeOptions:
    """Which Rekognition features run, and request-time floors. The floors are
    deliberately low: the record keeps the raw machine output and display / flag
    thresholds are applied later, so they can change without re-analysing anything.

    General labels always run. Moderation, text and image properties are each a
    separately billed feature an operator may switch off (stack parameters); a feature
    switched off leaves its part of the record empty."""

    min_label_confidence: float = 50.0
    max_labels: int = 100
    min_moderation_confidence: float = 40.0
    min_word_confidence: float = 50.0
    max_dominant_colors: int = 5
    engine: str | None = None
    moderation: bool = True
    text: bool = True
    image_properties: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AnalyzeOptions:
        """From the labeler's environment (the stack's parameters); unset means default.
        A bad value raises at cold start rather than labelling with a wrong setting."""
        default = cls()

        def flag(name: str, value: bool) -> bool:
            raw = env.get(name, "").strip().lower()
            if raw in ("", "true", "false"):
                return value if raw == "" else raw == "true"
            raise ValueError(f"{name}={env[name]!r}: expected true or false")

        def number(name: str, value: float, lo: float, hi: float) -> float:
            raw = env.get(name, "").strip()
            parsed = float(raw) if raw else value
            if not lo <= parsed <= hi:
                raise ValueError(f"{name}={raw!r}: expected {lo:g} to {hi:g}")
            return parsed

        return cls(
            max_labels=int(number("MAX_LABELS", default.max_labels, 1, 1000)),
            min_label_confidence=number("MIN_LABEL_CONFIDENCE", default.min_label_confidence, 0, 100),
            moderation=flag("DETECT_MODERATION", default.moderation),
            text=flag("DETECT_TEXT", default.text),
            image_properties=flag("IMAGE_PROPERTIES", default.image_properties),
        )


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (duck-typed: no botocore import)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def is_transient(exc: BaseException) -> bool:
    """True for throttling, server-side and connection errors a caller should retry."""
    code = error_code(exc)
    if code is None:
        return bool({cls.__name__ for cls in type(exc).__mro__} & TRANSIENT_EXCEPTIONS)
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return code in TRANSIENT_CODES or status >= 500 or status == 429


def analyze(image: ImageRef, client: Any, *, options: AnalyzeOptions | None = None) -> LabelRecord:
    """Analyse one image with up to three concurrent Rekognition calls (``options``).

    Returns a LABELED record, or a FAILED record when Rekognition rejects the image
    (bad format, too large, unreadable S3 object, bad parameter). Throttling, server
    errors and anything unexpected are raised so that the caller retries or reports.
    """
    options = options or AnalyzeOptions()
    engine = options.engine or getattr(client, "engine_name", "rekognition")
    request = image.request()
    features = ["GENERAL_LABELS"] + (["IMAGE_PROPERTIES"] if options.image_properties else [])
    labels_request: dict[str, Any] = {
        "Image": request, "MinConfidence": options.min_label_confidence, "MaxLabels": options.max_labels, "Features": features,
    }
    if options.image_properties:
        labels_request["Settings"] = {"ImageProperties": {"MaxDominantColors": options.max_dominant_colors}}
    calls: dict[str, tuple[Any, dict[str, Any]]] = {"labels": (client.detect_labels, labels_request)}
    if options.moderation:
        calls["moderation"] = (client.detect_moderation_labels,
                               {"Image": request, "MinConfidence": options.min_moderation_confidence})
    if options.text:
        calls["text"] = (client.detect_text,
                         {"Image": request, "Filters": {"WordFilter": {"MinConfidence": options.min_word_confidence}}})
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="rekognition") as pool:
        futures = {name: pool.submit(fn, **kwargs) for name, (fn, kwargs) in calls.items()}
        results: dict[str, Any] = {}
        rejection: BaseException | None = None
        other: BaseException | None = None
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except Exception as exc:  # sorted below: nothing is swallowed
                if error_code(exc) in REJECTION_CODES:
                    rejection = rejection or exc
                else:
                    other = other or exc
    analyzed_at = now_iso()
    base = {
        "bucket": image.bucket,
        "key": image.key,
        "etag": image.etag,
        "size": image.size,
        "engine": engine,
        "analyzed_at": analyzed_at,
        "updated_at": analyzed_at,
    }
    # A rejection is a fact about the image: it wins over a transient error on a
    # sibling call, because retrying would only be rejected again.
    if rejection is not None:
        message = rejection.response.get("Error", {}).get("Message", "")  # type: ignore[attr-defined]
        return LabelRecord(
            status=STATUS_FAILED,
            error=AnalysisError(code=error_code(rejection) or "", message=message[:500]),
            **base,
        )
    if other is not None:
        raise other
    return LabelRecord(
        status=STATUS_LABELED,
        labels=tuple(_labels(results["labels"])),
        moderation_labels=tuple(_moderation(results.get("moderation", {}))),
        text=tuple(_text(results.get("text", {}))),
        properties=_properties(results["labels"]),
        model_versions={
            k: v
            for k, v in {
                "labels": results["labels"].get("LabelModelVersion"),
                "moderation": results.get("moderation", {}).get("ModerationModelVersion"),
                "text": results.get("text", {}).get("TextModelVersion"),
            }.items()
            if v
        },
        **base,
    ).capped()


def _box(raw: dict[str, Any]) -> Box:
    return Box(
        left=float(raw.get("Left", 0.0)),
        top=float(raw.get("Top", 0.0)),
        width=float(raw.get("Width", 0.0)),
        height=float(raw.get("Height", 0.0)),
    )


def _labels(response: dict[str, Any]):
    for raw in response.get("Labels", []):
        yield Label(
            name=raw["Name"],
            confidence=float(raw["Confidence"]),
            parents=tuple(p["Name"] for p in raw.get("Parents", [])),
            categories=tuple(c["Name"] for c in raw.get("Categories", [])),
            aliases=tuple(a["Name"] for a in raw.get("Aliases", [])),
            instances=tuple(
                Instance(box=_box(i["BoundingBox"]), confidence=float(i["Confidence"]))
                for i in raw.get("Instances", [])
                if "BoundingBox" in i
            ),
        )


def _moderation(response: dict[str, Any]):
    for raw in response.get("ModerationLabels", []):
        yield ModerationLabel(
            name=raw["Name"],
            confidence=float(raw["Confidence"]),
            parent=raw.get("ParentName", ""),
            level=int(raw.get("TaxonomyLevel", 2 if raw.get("ParentName") else 1)),
        )


def _text(response: dict[str, Any]):
    for raw in response.get("TextDetections", []):
        text = raw.get("DetectedText", "")
        if not text.strip():
            continue
        yield TextDetection(
            text=text,
            type=raw["Type"],
            confidence=float(raw["Confidence"]),
            box=_box(raw.get("Geometry", {}).get("BoundingBox", {})),
        )


def _properties(response: dict[str, Any]) -> Properties:
    raw = response.get("ImageProperties") or {}
    quality = raw.get("Quality") or {}
    return Properties(
        brightness=_opt(quality.get("Brightness")),
        sharpness=_opt(quality.get("Sharpness")),
        contrast=_opt(quality.get("Contrast")),
        dominant_colors=tuple(
            Color(
                hex=c.get("HexCode", ""),
                red=int(c.get("Red", 0)),
                green=int(c.get("Green", 0)),
                blue=int(c.get("Blue", 0)),
                percent=float(c.get("PixelPercent", 0.0)),
                css=c.get("CSSColor", ""),
                simplified=c.get("SimplifiedColor", ""),
            )
            for c in raw.get("DominantColors", [])
        ),
    )


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)
