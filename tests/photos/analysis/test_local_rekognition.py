"""LocalRekognition on the real sample photos: response shapes validated by botocore's
service model, faces where they are (checked against scikit-image's independent LBP
face cascade), no faces where there are none, text where text was rendered."""

from __future__ import annotations

import io
import threading

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from botocore.stub import Stubber
from PIL import Image
from skimage import data as skdata
from skimage import feature

from infra.functions.labeler import ImageRef, analyze
from photos.analysis import LocalRekognition, ModelError
from photos.analysis import client as client_module
from photos.analysis.runtime import nudenet_model_path
from photos.analysis.yolo import Detection
from tests.samples import PHOTOS, encode, photo_bytes, photo_with_text

OPERATIONS = ("detect_labels", "detect_moderation_labels", "detect_text")


@pytest.fixture(scope="module")
def rekognition():
    client = LocalRekognition(label_models=[])
    client.warm()
    return client


def call(client, operation, data, **params):
    return getattr(client, operation)(Image={"Bytes": data}, **params)


def assert_valid_response(operation: str, response: dict):
    """Stubber.add_response validates a response against the operation's output shape
    and raises ParamValidationError on any unknown key, wrong type or bad enum."""
    real = boto3.client("rekognition", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    Stubber(real).add_response(operation, response)


def iou(a, b):
    ax1, ay1, aw, ah = a
    bx1, by1, bw, bh = b
    ix = max(0.0, min(ax1 + aw, bx1 + bw) - max(ax1, bx1))
    iy = max(0.0, min(ay1 + ah, by1 + bh) - max(ay1, by1))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


def reference_faces(name: str):
    """Faces found by scikit-image's LBP frontal-face cascade: an independent detector."""
    img = np.asarray(Image.open(PHOTOS[name]).convert("RGB"))
    cascade = feature.Cascade(skdata.lbp_frontal_face_cascade_filename())
    found = cascade.detect_multi_scale(img=img, scale_factor=1.2, step_ratio=1, min_size=(60, 60), max_size=(400, 400))
    h, w = img.shape[:2]
    return [(d["c"] / w, d["r"] / h, d["width"] / w, d["height"] / h) for d in found]


@pytest.mark.parametrize("photo", sorted(PHOTOS))
@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_response_validates_against_botocore_service_model(rekognition, photo, operation):
    response = call(rekognition, operation, photo_bytes(photo))

    assert_valid_response(operation, response)


def test_responses_with_every_feature_and_filter_validate(rekognition):
    data, _ = photo_with_text()
    labels = rekognition.detect_labels(
        Image={"Bytes": data}, MinConfidence=0, MaxLabels=5, Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"],
        Settings={"ImageProperties": {"MaxDominantColors": 3}})
    text = rekognition.detect_text(Image={"Bytes": data}, Filters={
        "WordFilter": {"MinConfidence": 10, "MinBoundingBoxHeight": 0.01, "MinBoundingBoxWidth": 0.01},
        "RegionsOfInterest": [{"BoundingBox": {"Left": 0, "Top": 0, "Width": 1, "Height": 0.5}}]})

    assert_valid_response("detect_labels", labels)
    assert_valid_response("detect_text", text)
    assert len(labels["ImageProperties"]["DominantColors"]) == 3
    assert 0 < sum(c["PixelPercent"] for c in labels["ImageProperties"]["DominantColors"]) <= 100.001


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_finds_the_face_where_an_independent_detector_finds_it(rekognition, photo):
    (expected,) = reference_faces(photo)

    labels = {lb["Name"]: lb for lb in call(rekognition, "detect_labels", photo_bytes(photo))["Labels"]}

    faces = labels["Face"]["Instances"]
    assert len(faces) == 1
    box = faces[0]["BoundingBox"]
    assert iou((box["Left"], box["Top"], box["Width"], box["Height"]), expected) > 0.6
    assert labels["Face"]["Confidence"] > 60
    assert labels["Person"]["Confidence"] >= labels["Face"]["Confidence"]
    assert [p["Name"] for p in labels["Face"]["Parents"]] == ["Head", "Person"]


@pytest.mark.parametrize("photo", ["chelsea", "rocket", "motorcycle", "coffee"])
def test_finds_no_face_where_there_is_none(rekognition, photo):
    names = {lb["Name"] for lb in call(rekognition, "detect_labels", photo_bytes(photo), MinConfidence=50)["Labels"]}

    assert not names & {"Face", "Person", "Head"}


@pytest.mark.parametrize("photo", sorted(PHOTOS))
def test_no_moderation_labels_on_the_sample_photos(rekognition, photo):
    assert call(rekognition, "detect_moderation_labels", photo_bytes(photo))["ModerationLabels"] == []


def test_reads_text_rendered_on_a_photo_with_line_and_word_geometry(rekognition):
    data, (left, top, right, bottom) = photo_with_text("OPEN DAILY 9 TO 5")

    detections = call(rekognition, "detect_text", data)["TextDetections"]

    lines = [d for d in detections if d["Type"] == "LINE"]
    words = [d for d in detections if d["Type"] == "WORD"]
    assert [ln["DetectedText"] for ln in lines] == ["OPEN DAILY 9 TO 5"]
    assert [w["DetectedText"] for w in words] == ["OPEN", "DAILY", "9", "TO", "5"]
    assert all(w["ParentId"] == lines[0]["Id"] for w in words)
    assert len({d["Id"] for d in detections}) == len(detections)
    box = lines[0]["Geometry"]["BoundingBox"]
    assert iou((box["Left"], box["Top"], box["Width"], box["Height"]), (left, top, right - left, bottom - top)) > 0.5
    # Words run left to right inside their line.
    lefts = [w["Geometry"]["BoundingBox"]["Left"] for w in words]
    assert lefts == sorted(lefts)
    assert lefts[0] >= box["Left"] - 0.01
    open_box = words[0]["Geometry"]["BoundingBox"]
    assert open_box["Width"] < box["Width"] / 3


def test_text_label_comes_with_text_and_not_without(rekognition):
    with_text, _ = photo_with_text()

    assert "Text" in {lb["Name"] for lb in call(rekognition, "detect_labels", with_text)["Labels"]}
    assert "Text" not in {lb["Name"] for lb in call(rekognition, "detect_labels", photo_bytes("chelsea"))["Labels"]}


def test_reads_the_scanned_page(rekognition):
    lines = [d["DetectedText"] for d in call(rekognition, "detect_text", photo_bytes("page"))["TextDetections"] if d["Type"] == "LINE"]

    assert "Region-based segmentation" in lines
    assert len(lines) >= 5


def test_word_filter_drops_small_words(rekognition):
    data, _ = photo_with_text("BIG", size=60)
    img = Image.open(io.BytesIO(data))
    from PIL import ImageDraw, ImageFont
    from tests.samples import FONT
    ImageDraw.Draw(img).text((40, 300), "tiny words here", font=ImageFont.truetype(str(FONT), 14), fill=(255, 255, 255))
    data = encode(img)

    everything = call(rekognition, "detect_text", data)["TextDetections"]
    filtered = call(rekognition, "detect_text", data, Filters={"WordFilter": {"MinBoundingBoxHeight": 0.06}})["TextDetections"]

    assert "BIG" in [d["DetectedText"] for d in filtered]
    assert len(filtered) < len(everything)


def test_min_confidence_and_max_labels_are_honoured(rekognition):
    data = photo_bytes("astronaut")

    assert call(rekognition, "detect_labels", data, MinConfidence=99.9)["Labels"] == []
    assert len(call(rekognition, "detect_labels", data, MaxLabels=1)["Labels"]) == 1


def test_moderation_classes_map_onto_rekognition_taxonomy(monkeypatch):
    client = LocalRekognition(label_models=[])
    detections = [
        Detection("FEMALE_BREAST_EXPOSED", 0.91, 0.1, 0.1, 0.2, 0.2),
        Detection("BUTTOCKS_EXPOSED", 0.55, 0.5, 0.5, 0.2, 0.2),
        Detection("MALE_BREAST_EXPOSED", 0.45, 0.5, 0.5, 0.2, 0.2),
        Detection("FEET_EXPOSED", 0.99, 0.0, 0.8, 0.1, 0.1),
        Detection("FACE_FEMALE", 0.88, 0.3, 0.1, 0.1, 0.1),
    ]
    monkeypatch.setattr(client_module.LocalRekognition, "_faces_and_nudity", lambda self, work: detections)

    response = client.detect_moderation_labels(Image={"Bytes": photo_bytes("astronaut")}, MinConfidence=40)

    assert_valid_response("detect_moderation_labels", response)
    got = {m["Name"]: (m["ParentName"], m["TaxonomyLevel"], round(m["Confidence"])) for m in response["ModerationLabels"]}
    assert got == {
        "Explicit": ("", 1, 91),
        "Explicit Nudity": ("Explicit", 2, 91),
        "Exposed Female Nipple": ("Explicit Nudity", 3, 91),
        "Exposed Buttocks or Anus": ("Explicit Nudity", 3, 55),
        "Non-Explicit Nudity of Intimate parts and Kissing": ("", 1, 45),
        "Non-Explicit Nudity": ("Non-Explicit Nudity of Intimate parts and Kissing", 2, 45),
        "Exposed Male Nipple": ("Non-Explicit Nudity", 3, 45),
    }
    confidences = [m["Confidence"] for m in response["ModerationLabels"]]
    assert confidences == sorted(confidences, reverse=True)


# --- bad input gets Rekognition's errors, as boto3's exception classes ------------


def _png(width, height):
    return encode(Image.new("RGB", (width, height), (200, 100, 50)), "PNG")


def _bomb_png() -> bytes:
    """A PNG whose header claims 30,000 x 30,000 pixels, in a few kilobytes."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (30_000 * 3 + 1) * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


BAD_INPUTS = {
    "not an image": (b"%PDF-1.7 definitely not a photo", "InvalidImageFormatException"),
    "html disguised": (b"<html><script>alert(1)</script></html>", "InvalidImageFormatException"),
    "gif": (encode(Image.new("RGB", (100, 100)), "GIF"), "InvalidImageFormatException"),
    "truncated jpeg": (photo_bytes("rocket")[:5000], "InvalidImageFormatException"),
    "decompression bomb": (_bomb_png(), "ImageTooLargeException"),
    "wider than 10,000 px": (_png(12_000, 90), "ImageTooLargeException"),
    "too small": (_png(40, 200), "InvalidParameterException"),
    "over 5 MB as bytes": (b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024 + 10), "ImageTooLargeException"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("operation", OPERATIONS)
def test_bad_input_raises_rekognitions_error(rekognition, case, operation):
    data, code = BAD_INPUTS[case]

    with pytest.raises(ClientError) as excinfo:
        call(rekognition, operation, data)

    assert excinfo.value.response["Error"]["Code"] == code
    assert isinstance(excinfo.value, getattr(rekognition.exceptions, code))
    assert excinfo.value.response["Error"]["Message"]


def test_bad_input_becomes_a_failed_record_through_analyze(rekognition):
    record = analyze(ImageRef(bucket="b", key="bad.jpg", data=photo_bytes("rocket")[:5000]), rekognition)

    assert record.status == "FAILED"
    assert record.error.code == "InvalidImageFormatException"
    assert "truncated" in record.error.message


def test_bad_parameters_fail_like_boto3(rekognition):
    with pytest.raises(ParamValidationError):
        rekognition.detect_labels(Image={"Bytes": photo_bytes("astronaut")}, MinConfidence="high")
    with pytest.raises(ParamValidationError):
        rekognition.detect_text(Image={"Bytes": photo_bytes("astronaut")}, Unknown=1)
    with pytest.raises(ParamValidationError):
        rekognition.detect_moderation_labels()


# --- S3Object through a storage reader ---------------------------------------------


def test_s3_object_is_read_through_the_reader():
    store = {("media", "uploads/a.jpg"): photo_bytes("grace_hopper")}
    reads = []

    def reader(bucket, name, version):
        reads.append((bucket, name, version))
        return store[(bucket, name)]

    client = LocalRekognition(reader=reader, label_models=[])
    record = analyze(ImageRef(bucket="media", key="uploads/a.jpg"), client)

    assert record.status == "LABELED"
    assert "Face" in {lb.name for lb in record.labels}
    assert reads == [("media", "uploads/a.jpg", None)]  # three calls, one read


def test_missing_s3_object_is_invalid_s3_object():
    def reader(bucket, name, version):
        raise FileNotFoundError(name)

    record = analyze(ImageRef(bucket="media", key="uploads/gone.jpg"), LocalRekognition(reader=reader, label_models=[]))

    assert record.status == "FAILED"
    assert record.error.code == "InvalidS3ObjectException"


def test_without_a_reader_s3_objects_are_refused():
    with pytest.raises(ClientError) as excinfo:
        LocalRekognition(label_models=[]).detect_text(Image={"S3Object": {"Bucket": "media", "Name": "x.jpg"}})

    assert excinfo.value.response["Error"]["Code"] == "InvalidS3ObjectException"


# --- sharing work and models ----------------------------------------------------------


def test_three_concurrent_calls_decode_and_infer_once(monkeypatch):
    client = LocalRekognition(label_models=[])
    client.warm()
    counts = {"detect": 0, "read": 0}
    lock = threading.Lock()
    real_detect, real_read = type(client.faces_model).detect, type(client.text_reader).read

    def counting(name, real):
        def wrapper(self, *args, **kwargs):
            with lock:
                counts[name] += 1
            return real(self, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(type(client.faces_model), "detect", counting("detect", real_detect))
    monkeypatch.setattr(type(client.text_reader), "read", counting("read", real_read))

    analyze(ImageRef(bucket="b", key="k", data=photo_bytes("astronaut")), client)

    assert counts == {"detect": 1, "read": 1}


def test_models_load_once_per_process():
    a, b = LocalRekognition(label_models=[]), LocalRekognition(label_models=[])

    assert a.faces_model is b.faces_model
    assert a.text_reader is b.text_reader


def test_local_label_models_adds_labels_from_any_ultralytics_export(monkeypatch):
    # NudeNet's model is itself an Ultralytics YOLOv8 export, so it stands in for a
    # COCO model here: class names come from its metadata, decoded by the same code.
    monkeypatch.setenv("LOCAL_LABEL_MODELS", str(nudenet_model_path()))
    client = LocalRekognition()

    response = client.detect_labels(Image={"Bytes": photo_bytes("astronaut")}, MinConfidence=50)

    assert_valid_response("detect_labels", response)
    face_female = {lb["Name"]: lb for lb in response["Labels"]}["Face Female"]
    assert len(face_female["Instances"]) == 1
    assert "320n.onnx" in response["LabelModelVersion"]


def test_missing_label_model_is_a_clear_error():
    client = LocalRekognition(label_models=["/nonexistent/yolov8n.onnx"])

    with pytest.raises(ModelError, match="model file not found: /nonexistent/yolov8n.onnx"):
        client.warm()


def test_exif_orientation_is_applied_before_detection(rekognition):
    upright = Image.open(PHOTOS["grace_hopper"])
    # Stored rotated, with EXIF saying "rotate 90 CW to display": like a phone photo.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(upright.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())

    faces = {lb["Name"]: lb for lb in call(rekognition, "detect_labels", data)["Labels"]}["Face"]["Instances"]

    box = faces[0]["BoundingBox"]
    (expected,) = reference_faces("grace_hopper")
    assert iou((box["Left"], box["Top"], box["Width"], box["Height"]), expected) > 0.6


def test_a_12_megapixel_photo_is_downscaled_before_inference(rekognition):
    big = Image.open(PHOTOS["grace_hopper"]).convert("RGB").resize((3000, 4000))
    data = encode(big, quality=85)

    response = call(rekognition, "detect_labels", data, MinConfidence=50)

    assert "Face" in {lb["Name"] for lb in response["Labels"]}
    from photos.analysis.images import WORK_MAX_SIDE, decode
    assert max(decode(data).rgb.shape[:2]) <= WORK_MAX_SIDE
