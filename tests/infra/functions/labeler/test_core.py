"""analyze() against boto3's real Rekognition client, stubbed with botocore's Stubber
(which validates both our requests and the canned responses against the service model)."""

from __future__ import annotations

import re
import threading
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from infra.functions.labeler import AnalyzeOptions, ImageRef, analyze
from infra.functions.labeler.core import REJECTION_CODES, is_transient
from tests.responses import LABELS_RESPONSE, MODERATION_RESPONSE, TEXT_RESPONSE

IMAGE = ImageRef(bucket="media-bucket", key="uploads/ab/cd.jpg", etag='"e1"', size=2048)

RESPONSES = {
    "detect_labels": LABELS_RESPONSE,
    "detect_moderation_labels": MODERATION_RESPONSE,
    "detect_text": TEXT_RESPONSE,
}


class StubbedRekognition:
    """One real boto3 client per operation, each with its own Stubber, so that the
    concurrent calls of analyze() cannot arrive in an order a single Stubber rejects.
    ``delay`` injects per-operation latency before the stubbed call."""

    def __init__(self, delay: dict[str, float] | None = None):
        self.delay = delay or {}
        self.clients = {}
        self.stubbers = {}
        self.threads: dict[str, str] = {}
        for op in RESPONSES:
            client = boto3.client("rekognition", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
            self.clients[op] = client
            self.stubbers[op] = Stubber(client)

    def _call(self, op, **kwargs):
        self.threads[op] = threading.current_thread().name
        time.sleep(self.delay.get(op, 0.0))
        return getattr(self.clients[op], op)(**kwargs)

    def detect_labels(self, **kwargs):
        return self._call("detect_labels", **kwargs)

    def detect_moderation_labels(self, **kwargs):
        return self._call("detect_moderation_labels", **kwargs)

    def detect_text(self, **kwargs):
        return self._call("detect_text", **kwargs)

    def __enter__(self):
        for s in self.stubbers.values():
            s.activate()
        return self

    def __exit__(self, *exc):
        for s in self.stubbers.values():
            s.deactivate()


def stub_all(rek: StubbedRekognition, image=None):
    expected_image = image or {"S3Object": {"Bucket": IMAGE.bucket, "Name": IMAGE.key}}
    rek.stubbers["detect_labels"].add_response(
        "detect_labels",
        LABELS_RESPONSE,
        {"Image": expected_image, "MinConfidence": ANY, "MaxLabels": ANY,
         "Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES"], "Settings": ANY},
    )
    rek.stubbers["detect_moderation_labels"].add_response(
        "detect_moderation_labels", MODERATION_RESPONSE, {"Image": expected_image, "MinConfidence": ANY}
    )
    rek.stubbers["detect_text"].add_response("detect_text", TEXT_RESPONSE, {"Image": expected_image, "Filters": ANY})


def test_success_maps_every_part_of_the_responses():
    with StubbedRekognition() as rek:
        stub_all(rek)

        record = analyze(IMAGE, rek)

        for s in rek.stubbers.values():
            s.assert_no_pending_responses()
    assert record.status == "LABELED"
    assert record.engine == "rekognition"
    assert (record.bucket, record.key, record.etag, record.size) == ("media-bucket", "uploads/ab/cd.jpg", '"e1"', 2048)
    dog = record.labels[0]
    assert (dog.name, dog.confidence, dog.parents, dog.aliases, dog.categories) == (
        "Dog", 97.1, ("Animal", "Pet"), ("Puppy",), ("Animals and Pets",))
    assert dog.instances[0].box.left == 0.1 and dog.instances[0].confidence == 96.0
    assert [(m.name, m.parent, m.level) for m in record.moderation_labels] == [
        ("Swimwear or Underwear", "", 1), ("Female Swimwear or Underwear", "Swimwear or Underwear", 2)]
    assert [(t.text, t.type) for t in record.text] == [("BEACH CLUB", "LINE"), ("BEACH", "WORD")]
    assert record.properties.brightness == 71.5
    assert record.properties.dominant_colors[0].hex == "#0a141e"
    assert record.model_versions == {"labels": "3.0", "moderation": "7.0", "text": "3.0"}
    assert record.analyzed_at == record.updated_at


def test_bytes_are_sent_when_the_image_has_data():
    image = ImageRef(bucket="b", key="k.jpg", data=b"\xff\xd8 not really a jpeg")
    with StubbedRekognition() as rek:
        stub_all(rek, image={"Bytes": image.data})

        assert analyze(image, rek).status == "LABELED"


def test_request_floors_come_from_options():
    with StubbedRekognition() as rek:
        s3 = {"S3Object": {"Bucket": IMAGE.bucket, "Name": IMAGE.key}}
        rek.stubbers["detect_labels"].add_response("detect_labels", LABELS_RESPONSE, {
            "Image": s3, "MinConfidence": 30.0, "MaxLabels": 20,
            "Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES"], "Settings": {"ImageProperties": {"MaxDominantColors": 5}}})
        rek.stubbers["detect_moderation_labels"].add_response(
            "detect_moderation_labels", MODERATION_RESPONSE, {"Image": s3, "MinConfidence": 25.0})
        rek.stubbers["detect_text"].add_response(
            "detect_text", TEXT_RESPONSE, {"Image": s3, "Filters": {"WordFilter": {"MinConfidence": 50.0}}})

        analyze(IMAGE, rek, options=AnalyzeOptions(min_label_confidence=30.0, max_labels=20, min_moderation_confidence=25.0))


@pytest.mark.parametrize("code", sorted(REJECTION_CODES))
@pytest.mark.parametrize("failing_op", ["detect_labels", "detect_text"])
def test_rejected_image_becomes_a_failed_record(code, failing_op):
    with StubbedRekognition() as rek:
        for op, response in RESPONSES.items():
            if op == failing_op:
                rek.stubbers[op].add_client_error(op, service_error_code=code, service_message="Request has invalid image format", http_status_code=400)
            else:
                rek.stubbers[op].add_response(op, response)

        record = analyze(IMAGE, rek)

    assert record.status == "FAILED"
    assert record.error.code == code
    assert "invalid image" in record.error.message
    assert record.labels == () and record.text == ()


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError"])
def test_throttling_and_server_errors_are_raised_for_the_caller_to_retry(code):
    with StubbedRekognition() as rek:
        for op, response in RESPONSES.items():
            if op == "detect_moderation_labels":
                rek.stubbers[op].add_client_error(op, service_error_code=code, http_status_code=500 if code == "InternalServerError" else 400)
            else:
                rek.stubbers[op].add_response(op, response)

        with pytest.raises(ClientError) as excinfo:
            analyze(IMAGE, rek)

    assert excinfo.value.response["Error"]["Code"] == code
    assert is_transient(excinfo.value)


@pytest.mark.parametrize(("code", "status"), [
    ("SlowDown", 503), ("InternalError", 500), ("ServiceUnavailable", 503),  # S3's own spellings
    ("RequestLimitExceeded", 400), ("InternalServerError", 500),  # DynamoDB
    ("SomethingNew", 502), ("SomethingNew", 504), ("TooManyRequests", 429),  # any 5xx or 429, whatever its code
])
def test_every_throttle_and_server_error_is_transient_whatever_the_service_calls_it(code, status):
    error = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    assert is_transient(error)


def test_the_throttling_codes_are_at_least_botocores_own():
    from botocore.retries.standard import ThrottledRetryableChecker

    from infra.functions.labeler.core import TRANSIENT_CODES

    assert set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES) - {"EC2ThrottledException"} <= TRANSIENT_CODES


def test_a_body_read_cut_short_is_transient():
    from botocore.exceptions import IncompleteReadError, ResponseStreamingError

    assert is_transient(IncompleteReadError(actual_bytes=1, expected_bytes=2))
    assert is_transient(ResponseStreamingError(error="reset"))
    assert not is_transient(ValueError("a bug"))


def test_access_denied_is_raised_but_not_called_transient():
    with StubbedRekognition() as rek:
        for op, response in RESPONSES.items():
            if op == "detect_text":
                rek.stubbers[op].add_client_error(op, service_error_code="AccessDeniedException", http_status_code=403)
            else:
                rek.stubbers[op].add_response(op, response)

        with pytest.raises(ClientError) as excinfo:
            analyze(IMAGE, rek)

    assert not is_transient(excinfo.value)


def test_rejection_wins_over_a_transient_error_on_a_sibling_call():
    with StubbedRekognition() as rek:
        rek.stubbers["detect_labels"].add_client_error("detect_labels", service_error_code="ThrottlingException")
        rek.stubbers["detect_moderation_labels"].add_client_error("detect_moderation_labels", service_error_code="ImageTooLargeException")
        rek.stubbers["detect_text"].add_response("detect_text", TEXT_RESPONSE)

        record = analyze(IMAGE, rek)

    assert record.error.code == "ImageTooLargeException"


def test_the_three_calls_run_concurrently():
    delays = {"detect_labels": 0.30, "detect_moderation_labels": 0.20, "detect_text": 0.25}
    with StubbedRekognition(delay=delays) as rek:
        stub_all(rek)

        started = time.perf_counter()
        analyze(IMAGE, rek)
        elapsed = time.perf_counter() - started

    # Sequential would take the sum (0.75 s); concurrent takes about the slowest (0.30 s).
    assert elapsed < 0.30 + 0.15, elapsed
    assert len(set(rek.threads.values())) == 3


def test_labeler_package_needs_nothing_beyond_the_standard_library():
    # The Lambda asset is infra/functions/labeler alone: no Django, numpy or Pillow.
    import subprocess
    import sys
    from pathlib import Path

    functions_dir = Path(__file__).resolve().parents[4] / "infra" / "functions"
    code = (
        "import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p]; "
        f"sys.path.insert(0, {str(functions_dir)!r}); "
        "import labeler, labeler.core, labeler.record, labeler.parsing, labeler.table, labeler.events; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'numpy', 'PIL', 'boto3', 'botocore'}))"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(("env", "error"), [
    ({"DETECT_TEXT": "yes"}, "DETECT_TEXT='yes': expected true or false"),
    ({"MAX_LABELS": "0"}, "MAX_LABELS='0': expected 1 to 1000"),
    ({"MIN_LABEL_CONFIDENCE": "101"}, "MIN_LABEL_CONFIDENCE='101': expected 0 to 100"),
])
def test_a_bad_analysis_setting_fails_at_cold_start_not_silently(env, error):
    with pytest.raises(ValueError, match=re.escape(error)):
        AnalyzeOptions.from_env(env)


def test_analysis_settings_from_the_environment():
    options = AnalyzeOptions.from_env({"DETECT_MODERATION": "False", "MAX_LABELS": "25", "MIN_LABEL_CONFIDENCE": "72.5"})

    assert (options.moderation, options.text, options.image_properties) == (False, True, True)
    assert (options.max_labels, options.min_label_confidence) == (25, 72.5)
    assert AnalyzeOptions.from_env({}) == AnalyzeOptions()
