"""The CDK stack: the properties that matter, cdk-nag's AwsSolutions checks, cfn-lint,
and that the tests synthesize what the CLI synthesizes (cdk.json's context loaded)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from aws_cdk import aws_lambda as lambda_  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402

from infra import resources  # noqa: E402
from infra.app import build  # noqa: E402

INFRA = Path(__file__).resolve().parents[2] / "infra"
ENV = cdk.Environment(account="123456789012", region="eu-west-1")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    context = json.loads((INFRA / "cdk.json").read_text())["context"]
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(context=context, outdir=str(outdir))
    stack = build(app, env=ENV)
    assembly = app.synth()
    return stack, Template.from_stack(stack), outdir, assembly


@pytest.fixture(scope="module")
def template(synthesized):
    return synthesized[1]


def resources_of(template, kind):
    return template.find_resources(kind)


def the(template, kind, props=None):
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return next(iter(found.values()))


def test_media_bucket_is_private_encrypted_versioned_and_logged(template):
    template.has_resource_properties("AWS::S3::Bucket", {
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "VersioningConfiguration": {"Status": "Enabled"},
        "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "media-bucket/"},
        "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({
            "NoncurrentVersionExpiration": {"NoncurrentDays": resources.NONCURRENT_VERSION_EXPIRATION_DAYS},
            "Status": "Enabled"})])},
        "CorsConfiguration": {"CorsRules": [Match.object_like({
            "AllowedMethods": resources.CORS_ALLOWED_METHODS, "AllowedOrigins": {"Ref": "CorsAllowedOrigins"}})]},
    })
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})


def test_unconfirmed_direct_uploads_expire_after_a_day(template):
    """A video's multipart upload resumes for a day (its token); its parts are dropped the
    day after, not after the bucket-wide week."""
    template.has_resource_properties("AWS::S3::Bucket", {
        "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({
            "Prefix": resources.INCOMING_PREFIX, "ExpirationInDays": 1,
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1}, "Status": "Enabled"})])},
    })


def test_every_bucket_refuses_plain_http(template):
    policies = resources_of(template, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_every_object_under_the_upload_prefix_notifies_the_queue(template):
    """No suffix filter: S3's are case-sensitive, and Chelsea.JPG put straight into the
    bucket must be analysed too (the handler compares suffixes in lower case and records
    anything else as skipped). Created objects are analysed, removed ones erased, expired
    ones too (S3 sends lifecycle expirations as LifecycleExpiration, not ObjectRemoved)."""
    notifications = the(template, "Custom::S3BucketNotifications")
    configs = notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert sorted(c["Events"][0] for c in configs) == ["s3:LifecycleExpiration:*", "s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    for config in configs:
        assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "uploads/"}]


def test_queue_has_a_dlq_and_a_visibility_timeout_of_six_function_timeouts(template):
    function = the(template, "AWS::Lambda::Function", {"Handler": "labeler.handler.handler"})
    timeout = function["Properties"]["Timeout"]
    template.has_resource_properties("AWS::SQS::Queue", {
        "VisibilityTimeout": Match.any_value(),
        "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": resources.DLQ_MAX_RECEIVE_COUNT},
    })
    queues = template.find_resources("AWS::SQS::Queue", {"Properties": {"RedrivePolicy": Match.any_value()}})
    assert sorted(name.rstrip("0123456789ABCDEF") for name in queues) == [
        "LabelerBackfillQueue", "LabelerQueue", "VideoBackfillStartQueue", "VideoCompletionQueue", "VideoStartQueue"]
    for name, queue in queues.items():
        if name.startswith("Labeler"):
            assert queue["Properties"]["VisibilityTimeout"] >= 6 * timeout
    assert resources.DLQ_MAX_RECEIVE_COUNT >= 5  # AWS's advice for SQS event sources


def test_the_backfill_has_its_own_lane_and_keeps_its_messages_14_days(template):
    """A backfill of millions never delays a live upload (its own queue and poller with
    its own MaximumConcurrency) and never expires unseen (SQS drops expired messages
    without a DLQ; the default retention is 4 days)."""
    backfill = the(template, "AWS::SQS::Queue", {"MessageRetentionPeriod": 14 * 86400, "RedrivePolicy": {
        "deadLetterTargetArn": {"Fn::GetAtt": [Match.string_like_regexp("LabelerBackfillDeadLetters"), "Arn"]},
        "maxReceiveCount": Match.any_value()}})
    dlq = backfill["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert dlq.startswith("LabelerBackfillDeadLetters")
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("LabelerBackfillQueue"), "Arn"]},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": {"Ref": "BackfillMaximumConcurrency"}},
    })
    template.has_output("BackfillQueueUrl", {"Value": {"Ref": Match.string_like_regexp("LabelerBackfillQueue")}})


def test_an_alarm_watches_the_dead_letter_queue(template):
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Namespace": "AWS/SQS",
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [Match.string_like_regexp("LabelerDeadLetters"), "QueueName"]}}],
    })


def test_every_alarm_notifies_the_alarm_topic_with_an_optional_email(template):
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    metrics = sorted(a["Properties"].get("MetricName", "(metric math)") for a in alarms.values())
    assert metrics == ["(metric math)", "(metric math)", "(metric math)", "(metric math)",
                       "ApproximateAgeOfOldestMessage", "ApproximateAgeOfOldestMessage",
                       "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesVisible",
                       "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesVisible",
                       "ApproximateNumberOfMessagesVisible", "Errors",
                       "MessagesFailed", "SyncRuns", "Throttles"]
    (topic_id,) = template.find_resources("AWS::SNS::Topic", {"Properties": {"DisplayName": "Media pipeline alarms"}})
    for alarm in alarms.values():  # an alarm nobody hears about is no alarm
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    (subscription,) = template.find_resources("AWS::SNS::Subscription", {"Properties": {"Protocol": "email"}}).values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    template.has_parameter("AlarmEmail", {"Type": "String", "Default": ""})


def test_labeler_runs_on_the_latest_python_runtime(template):
    latest = max(
        (getattr(lambda_.Runtime, n) for n in dir(lambda_.Runtime) if n.startswith("PYTHON_3_")),
        key=lambda r: tuple(int(x) for x in r.name.removeprefix("python").split(".")),
    )
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "labeler.handler.handler",
        "Runtime": latest.name,
        "Environment": {"Variables": {"LABELS_TABLE_NAME": {"Ref": Match.string_like_regexp("LabelsTable")},
                                      "UPLOAD_PREFIX": "uploads/"}},
    })



def test_reserved_concurrency_covers_both_pollers_unless_the_account_cannot_reserve(template):
    """AWS's advice with MaximumConcurrency: reserve at least the mappings' sum, so no other
    function takes the capacity the pollers count on (below it, batches are throttled and
    burn receive counts). 0, the default, reserves none: a new account's limit allows no
    reservation, and a fixed number would fall behind the concurrency parameters."""
    function = the(template, "AWS::Lambda::Function", {"Handler": "labeler.handler.handler"})
    assert function["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReservesConcurrency", {"Ref": "LabelerReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
    template.has_parameter("LabelerReservedConcurrency", {"Type": "Number", "Default": 0})


def test_a_sync_that_stops_and_messages_that_keep_failing_raise_alarms(template):
    heartbeat = the(template, "AWS::CloudWatch::Alarm", {"MetricName": "SyncRuns"})["Properties"]
    assert (heartbeat["ComparisonOperator"], heartbeat["Threshold"], heartbeat["TreatMissingData"]) == (
        "LessThanThreshold", 1, "breaching")  # no beat at all is the alarm
    assert heartbeat["Dimensions"] == [{"Name": "service", "Value": "django-sync"}]
    failed = the(template, "AWS::CloudWatch::Alarm", {"MetricName": "MessagesFailed"})["Properties"]
    assert (failed["EvaluationPeriods"], failed["DatapointsToAlarm"]) == (3, 3)
    throttles = the(template, "AWS::CloudWatch::Alarm", {"AlarmDescription": Match.string_like_regexp("DynamoDB throttled")})
    names = sorted(m["MetricStat"]["Metric"]["MetricName"] for m in throttles["Properties"]["Metrics"] if "MetricStat" in m)
    assert names == ["ReadThrottleEvents", "ReadThrottleEvents", "WriteThrottleEvents", "WriteThrottleEvents"]


def test_sqs_event_source_reports_batch_item_failures_and_bounds_concurrency(template):
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BatchSize": resources.SQS_BATCH_SIZE,
        "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("LabelerQueue"), "Arn"]},
        "ScalingConfig": {"MaximumConcurrency": {"Ref": "LabelerMaximumConcurrency"}},
    })
    template.has_parameter("LabelerMaximumConcurrency", {
        "Type": "Number", "Default": resources.DEFAULT_MAXIMUM_CONCURRENCY, "MinValue": 2})


def test_labels_table_is_on_demand_with_pitr_and_the_sync_index(template):
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "KeySchema": resources.TABLE_KEY_SCHEMA,
        "GlobalSecondaryIndexes": [{"IndexName": resources.SYNC_INDEX, "KeySchema": resources.SYNC_INDEX_KEY_SCHEMA,
                                    "Projection": {"ProjectionType": "ALL"}}],
        "DeletionProtectionEnabled": True,
    })


def _statements(policy):
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    return [(s["Action"] if isinstance(s["Action"], list) else [s["Action"]], s["Resource"]) for s in statements]


def test_labeler_permissions_are_least_privilege(template):
    policies = template.find_resources("AWS::IAM::Policy", {
        "Properties": {"Roles": [{"Ref": Match.string_like_regexp("LabelerFunctionServiceRole")}]}})
    (policy,) = policies.values()
    statements = _statements(policy)
    actions = sorted(a for acts, _ in statements for a in acts)
    assert actions == sorted([
        "rekognition:DetectLabels", "rekognition:DetectModerationLabels", "rekognition:DetectText",
        "s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
        # Videos are handed to the video queues (and nothing else is sent anywhere).
        "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
    ])
    sends = next(r for acts, r in statements if "sqs:SendMessage" in acts)
    assert sorted(queue["Fn::GetAtt"][0].rstrip("0123456789ABCDEF") for queue in sends) == [
        "VideoBackfillStartQueue", "VideoStartQueue"]
    by_action = {a: r for acts, r in statements for a in acts}
    assert by_action["rekognition:DetectText"] == "*"  # the API has no resource-level permissions
    (bucket_arn, suffix) = by_action["s3:GetObject"]["Fn::Join"][1]
    assert bucket_arn["Fn::GetAtt"][0].startswith("MediaBucket") and suffix == "/uploads/*"
    assert by_action["dynamodb:PutItem"]["Fn::GetAtt"][1] == "Arn"  # the table itself, no index


def test_web_app_policy_reads_the_table_and_writes_only_its_prefixes(template):
    policy = the(template, "AWS::IAM::ManagedPolicy")
    statements = _statements(policy)
    s3_objects = next(r for acts, r in statements if "s3:PutObject" in acts)
    suffixes = sorted(part["Fn::Join"][1][1] for part in s3_objects)
    assert suffixes == ["/incoming/*", "/renditions/*", "/thumbnails/*", "/uploads/*"]
    objects = next(acts for acts, _ in statements if "s3:PutObject" in acts)
    assert "s3:AbortMultipartUpload" in objects  # failed multipart uploads leave no billed parts
    assert "s3:GetObjectVersion" in objects  # CopyObject of a confirmed upload's VersionId needs it
    # A video's multipart upload: ListParts (resuming, and checking the parts before they
    # are joined) is its own permission; without it the confirm fails with 403 in AWS.
    assert "s3:ListMultipartUploadParts" in objects
    (depth,) = [r for acts, r in statements if "sqs:GetQueueAttributes" in acts]  # the sweep's backlog check
    assert depth["Fn::GetAtt"][0].startswith("LabelerQueue")
    dynamo = next(acts for acts, _ in statements if any(a.startswith("dynamodb:") for a in acts))
    assert "dynamodb:PutItem" not in dynamo and "dynamodb:Query" in dynamo
    # Re-analysis messages the labeler's queue (no object rewrite, so no s3:CopyObject).
    (send,) = [r for acts, r in statements if "sqs:SendMessage" in acts]
    assert sorted(queue["Fn::GetAtt"][0].rstrip("0123456789ABCDEF") for queue in send) == ["LabelerBackfillQueue",
                                                                                          "LabelerQueue"]
    (metrics,) = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if "cloudwatch:PutMetricData" in _actions(st)]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "MediaPipeline"}}
    # The web app's only put: erasure tombstones, limited to their attributes.
    (put,) = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if "dynamodb:PutItem" in _actions(st)]
    allowed = put["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    assert "labels" not in allowed and set(allowed) == set(resources.TOMBSTONE_ATTRIBUTES)


def test_web_app_may_list_the_bucket_so_head_object_on_a_missing_key_is_404_not_403(template):
    """S3 answers HeadObject on a missing key with 403 to a caller without s3:ListBucket
    on the bucket (moto does not model it). django-storages' exists() runs for every new
    key, so the grant must hold for HeadObject, whose request carries no s3:prefix: no
    condition."""
    policy = the(template, "AWS::IAM::ManagedPolicy")
    (listing,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "s3:ListBucket" in _actions(s)]
    assert "Condition" not in listing
    assert listing["Resource"]["Fn::GetAtt"][0].startswith("MediaBucket")


def test_django_serves_renditions_under_a_prefix_the_policy_grants():
    from photos.renditions import display_rendition_name

    class Photo:
        uid = "00000000-0000-0000-0000-000000000000"

    assert display_rendition_name(Photo()).startswith(resources.RENDITION_PREFIX)


def _actions(statement) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_outputs_cover_every_setting_django_needs(template):
    outputs = template.find_outputs("*")
    assert {"MediaBucketName", "LabelsTableName", "Region", "WebAppPolicyArn", "DeadLetterQueueUrl"} <= set(outputs)


def test_cdk_nag_aws_solutions_passes_and_every_acknowledgment_has_a_reason(synthesized):
    _, _, outdir, _ = synthesized
    report = json.loads((outdir / "validation-report.json").read_text())
    (plugin,) = report["pluginReports"]
    assert plugin["pluginName"] == "AwsSolutions"
    assert plugin["violations"] == [], json.dumps(plugin["violations"], indent=1)[:2000]
    assert plugin["conclusion"] == "success"
    acknowledged = plugin["suppressedViolations"]
    assert acknowledged, "expected the documented acknowledgments"
    for item in acknowledged:
        assert len(item["reason"]) > 30, item


def test_cfn_lint_is_clean(synthesized):
    _, _, outdir, _ = synthesized
    cfn_lint = Path(os.sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(outdir / "MediaPipeline.template.json")], cwd=INFRA,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr


def test_lambda_asset_is_the_labeler_package_alone(synthesized):
    stack, template, outdir, _ = synthesized
    function = the(template, "AWS::Lambda::Function", {"Handler": "labeler.handler.handler"})
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    asset_dir = outdir / f"asset.{asset_hash}"
    files = sorted(str(p.relative_to(asset_dir)) for p in asset_dir.rglob("*") if p.is_file())
    assert files == ["labeler/__init__.py", "labeler/core.py", "labeler/events.py", "labeler/handler.py",
                     "labeler/parsing.py", "labeler/record.py", "labeler/rendition.py", "labeler/table.py",
                     "labeler/timeline.py",  # Rekognition Video's shapes
                     "labeler/video.py",  # the video starter's and collector's handlers
                     "labeler/video_jobs.py"]  # the jobs: started, read back, paged (issue 22)


def test_the_dependencies_layer_holds_powertools_pillow_and_pi_heif_for_arm64_python_3_14(synthesized):
    """Built by pip from hash-locked wheels, without Docker (issue #11, findings 4 and 8)."""
    _, template, outdir, _ = synthesized
    (layer_id, layer), = template.find_resources("AWS::Lambda::LayerVersion").items()
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    function = the(template, "AWS::Lambda::Function", {"Handler": "labeler.handler.handler"})
    assert function["Properties"]["Layers"] == [{"Ref": layer_id}]
    assert function["Properties"]["Architectures"] == ["arm64"]
    asset_dir = outdir / f"asset.{layer['Properties']['Content']['S3Key'].removesuffix('.zip')}"
    python = asset_dir / "python"
    assert (python / "aws_lambda_powertools" / "__init__.py").is_file()
    assert [p.name for p in (python / "PIL").glob("_imaging.*.so")] == ["_imaging.cpython-314-aarch64-linux-gnu.so"]
    # HEIC: the decode-only build (libheif + libde265; no x265 encoder).
    assert [p.name for p in python.glob("_pi_heif.*.so")] == ["_pi_heif.cpython-314-aarch64-linux-gnu.so"]
    assert not list(python.rglob("libx265*"))
    assert not list(python.rglob("*.pyc")) and not (python / "bin").exists()


def test_the_function_sends_its_metrics_and_logs_through_powertools(template):
    function = the(template, "AWS::Lambda::Function", {"Handler": "labeler.handler.handler"})
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "labeler"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == resources.METRICS_NAMESPACE


def test_the_failed_rate_alarm_reads_the_labelers_metrics(template):
    """Every image FAILED (a permission or KMS problem) was quiet (issue #11, finding 7)."""
    alarm = the(template, "AWS::CloudWatch::Alarm", {"Threshold": resources.FAILED_RATE_ALARM_PERCENT})
    queries = {q["Id"]: q for q in alarm["Properties"]["Metrics"]}
    expression = queries.pop("expr_1")["Expression"]
    assert "100 * FILL(failed, 0)" in expression and f">= {resources.FAILED_RATE_MIN_IMAGES}" in expression
    for name, metric in (("failed", "ImagesFailed"), ("labeled", "ImagesLabeled")):
        stat = queries[name]["MetricStat"]
        assert stat["Metric"] == {"Namespace": resources.METRICS_NAMESPACE, "MetricName": metric,
                                  "Dimensions": [{"Name": "service", "Value": "labeler"}]}
        assert stat["Stat"] == "Sum" and stat["Period"] == 900 and queries[name]["ReturnData"] is False


@pytest.mark.parametrize(("parameter", "variable", "default"), [
    ("DetectModeration", "DETECT_MODERATION", "true"),
    ("DetectText", "DETECT_TEXT", "true"),
    ("ImageProperties", "IMAGE_PROPERTIES", "true"),
    ("MaxLabels", "MAX_LABELS", 100),
    ("MinLabelConfidence", "MIN_LABEL_CONFIDENCE", 50),
])
def test_rekognition_features_and_floors_are_stack_parameters(template, parameter, variable, default):
    """Operators switch features off or change MaxLabels/MinConfidence without a code
    change; the defaults are what the handler did before (issue #11, finding 7)."""
    from infra.functions.labeler.core import AnalyzeOptions

    params = template.to_json()["Parameters"][parameter]
    assert params["Default"] == default
    function = the(template, "AWS::Lambda::Function", {"Handler": "labeler.handler.handler"})
    assert function["Properties"]["Environment"]["Variables"][variable] == {"Ref": parameter}
    defaults = {k: str(v["Default"]) for k, v in template.to_json()["Parameters"].items()}
    mapping = {"DETECT_MODERATION": "DetectModeration", "DETECT_TEXT": "DetectText", "IMAGE_PROPERTIES": "ImageProperties",
               "MAX_LABELS": "MaxLabels", "MIN_LABEL_CONFIDENCE": "MinLabelConfidence"}
    assert AnalyzeOptions.from_env({k: defaults[v] for k, v in mapping.items()}) == AnalyzeOptions()


def test_tests_synthesize_what_the_cli_synthesizes(synthesized, tmp_path):
    """`make synth` (the pinned CDK CLI) and the tests produce the same resources."""
    _, template, _, _ = synthesized
    cli = INFRA / "node_modules" / ".bin" / "cdk"
    assert cli.exists(), "run `make test` (it installs the pinned CDK CLI) "
    env = {**os.environ, "CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    result = subprocess.run(
        [str(cli), "synth", "--app", f"{os.sys.executable} app.py", "--quiet", "--no-notices", "--output", str(tmp_path),
         "-c", f"account={ENV.account}", "-c", f"region={ENV.region}"],
        cwd=INFRA, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    cli_template = json.loads((tmp_path / "MediaPipeline.template.json").read_text())

    def without_metadata(resources):
        # The CLI adds aws:cdk:path metadata; everything CloudFormation acts on must match.
        return {k: {f: v for f, v in r.items() if f != "Metadata"} for k, r in resources.items()}

    assert without_metadata(cli_template["Resources"]) == without_metadata(template.to_json()["Resources"])


def test_outputs_file_becomes_the_apps_environment(tmp_path):
    from infra.outputs_to_env import main

    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(json.dumps({"MediaPipeline": {
        "MediaBucketName": "mediapipeline-mediabucket-1abc", "LabelsTableName": "MediaPipeline-LabelsTable-XYZ",
        "Region": "eu-west-1", "WebAppPolicyArn": "arn:aws:iam::123456789012:policy/x",
        "LabelerQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
        "DeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
        "BackfillQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/backfill",
        "BackfillDeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/backfill-dlq"}}))
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(outputs)]) == 0

    assert out.getvalue().splitlines() == [
        "AWS_STORAGE_BUCKET_NAME=mediapipeline-mediabucket-1abc",
        "LABELS_TABLE_NAME=MediaPipeline-LabelsTable-XYZ",
        "AWS_REGION=eu-west-1",
        "LABELER_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/q",
        "LABELER_DLQ_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
        "LABELER_BACKFILL_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/backfill",
        "LABELER_BACKFILL_DLQ_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/backfill-dlq",
        "PHOTOS_PIPELINE=aws",
        "PHOTOS_STORAGE=s3",
    ]
    with pytest.raises(SystemExit, match="outputs missing"):
        main_outputs = tmp_path / "partial.json"
        main_outputs.write_text(json.dumps({"MediaPipeline": {"Region": "eu-west-1"}}))
        main([str(main_outputs)])


# --- video (issue 22) -------------------------------------------------------------------


def test_rekognition_publishes_completions_through_a_role_that_may_publish_to_that_topic_only(template):
    topic_id, topic = next(iter(template.find_resources("AWS::SNS::Topic", {"Properties": {
        "TopicName": {"Fn::Join": ["", ["AmazonRekognition-", {"Ref": "AWS::StackName"}, "-video"]]}}}).items()))
    role = the(template, "AWS::IAM::Role", {"AssumeRolePolicyDocument": {"Statement": [Match.object_like({
        "Principal": {"Service": "rekognition.amazonaws.com"}})]}})
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    role_id = next(iter(template.find_resources("AWS::IAM::Role", {"Properties": {"AssumeRolePolicyDocument": {
        "Statement": [Match.object_like({"Principal": {"Service": "rekognition.amazonaws.com"}})]}}})))
    (policy,) = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}).values()
    assert _statements(policy) == [(["sns:Publish"], {"Ref": topic_id})]
    # Completions reach the collector through a queue with its DLQ.
    template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "sqs", "TopicArn": {"Ref": topic_id},
        "Endpoint": {"Fn::GetAtt": [Match.string_like_regexp("VideoCompletionQueue"), "Arn"]}})


def _function_policy(template, handler):
    function_id = next(iter(template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})))
    role = template.find_resources("AWS::Lambda::Function")[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy,) = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role}]}}).values()
    return _statements(policy), policy


def test_the_starter_may_start_jobs_and_pass_the_publisher_role_to_rekognition_only(template):
    statements, policy = _function_policy(template, "labeler.video.start_handler")
    actions = {a for acts, _ in statements for a in acts}
    assert {"rekognition:StartLabelDetection", "rekognition:StartContentModeration", "rekognition:StartTextDetection",
            "iam:PassRole", "s3:GetObject", "s3:GetObjectVersion", "dynamodb:PutItem",
            "dynamodb:ConditionCheckItem"} <= actions
    assert not {a for a in actions if a.startswith("rekognition:Detect")}
    (passrole,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "iam:PassRole"]
    assert passrole["Resource"]["Fn::GetAtt"][0].startswith("VideoRekognitionPublisher")
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "rekognition.amazonaws.com"}}
    reads = next(r for acts, r in statements if "s3:GetObject" in acts)
    assert sorted(part["Fn::Join"][1][1] for part in reads) == [f"/{resources.RENDITION_PREFIX}*",
                                                                 f"/{resources.UPLOAD_PREFIX}*"]  # the video or its stream
    function = the(template, "AWS::Lambda::Function", {"Handler": "labeler.video.start_handler"})
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["VIDEO_APIS"] == {"Ref": "VideoApis"} and variables["VIDEO_MIN_CONFIDENCE"] == {"Ref": "VideoMinConfidence"}
    assert variables["VIDEO_ROLE_ARN"]["Fn::GetAtt"][0].startswith("VideoRekognitionPublisher")
    template.has_parameter("VideoApis", {"Default": "labels,moderation,text"})


def test_the_collector_may_read_results_and_write_timelines_under_the_rendition_prefix(template):
    statements, _ = _function_policy(template, "labeler.video.collect_handler")
    by_action = {a: r for acts, r in statements for a in acts}
    assert {"rekognition:GetLabelDetection", "rekognition:GetContentModeration", "rekognition:GetTextDetection",
            "s3:PutObject", "dynamodb:UpdateItem", "dynamodb:PutItem"} <= set(by_action)
    assert by_action["s3:PutObject"]["Fn::Join"][1][1] == f"/{resources.RENDITION_PREFIX}*"
    assert not {a for a in by_action if a.startswith("rekognition:Start") or a == "iam:PassRole"}


def test_a_video_waits_out_the_jobs_quota_on_its_queue_for_about_a_day(template):
    """LimitExceeded is retried from the video queue: many receives, each hidden up to 15
    minutes (the handler's back-off), so a burst of videos is started as jobs finish."""
    queue = the(template, "AWS::SQS::Queue", {"RedrivePolicy": {
        "deadLetterTargetArn": {"Fn::GetAtt": [Match.string_like_regexp("VideoStartDeadLetters"), "Arn"]},
        "maxReceiveCount": resources.VIDEO_MAX_RECEIVES}})
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * resources.VIDEO_FUNCTION_TIMEOUT_SECONDS
    assert resources.VIDEO_MAX_RECEIVES * 900 >= 86400 * 0.9  # receives x the back-off's ceiling
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("VideoStartQueue"), "Arn"]},
        "FunctionResponseTypes": ["ReportBatchItemFailures"], "BatchSize": 1,
        "ScalingConfig": {"MaximumConcurrency": {"Ref": "VideoStartMaximumConcurrency"}}})
    labeler = the(template, "AWS::Lambda::Function", {"Handler": "labeler.handler.handler"})
    assert labeler["Properties"]["Environment"]["Variables"]["VIDEO_QUEUE_URL"]["Ref"].startswith("VideoStartQueue")


def test_a_backfills_videos_have_their_own_lane_behind_live_uploads(template):
    """analyse_bucket's videos: their own queue (1,000 tries, 14 days), two starts at a
    time, started only while the live video queue is empty (the starter reads its depth)."""
    queue = the(template, "AWS::SQS::Queue", {"RedrivePolicy": {
        "deadLetterTargetArn": {"Fn::GetAtt": [Match.string_like_regexp("VideoBackfillStartDeadLetters"), "Arn"]},
        "maxReceiveCount": resources.VIDEO_BACKFILL_MAX_RECEIVES}})
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    assert resources.VIDEO_BACKFILL_MAX_RECEIVES * 900 <= 14 * 86400  # every try fits in the queue's retention
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("VideoBackfillStartQueue"), "Arn"]},
        "FunctionName": {"Ref": Match.string_like_regexp("VideoStarter")},
        "BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": 2}})
    labeler = the(template, "AWS::Lambda::Function", {"Handler": "labeler.handler.handler"})
    assert labeler["Properties"]["Environment"]["Variables"]["VIDEO_BACKFILL_QUEUE_URL"]["Ref"].startswith(
        "VideoBackfillStartQueue")
    starter = the(template, "AWS::Lambda::Function", {"Handler": "labeler.video.start_handler"})
    assert starter["Properties"]["Environment"]["Variables"]["LIVE_VIDEO_QUEUE_URL"]["Ref"].startswith("VideoStartQueue")
    statements, _ = _function_policy(template, "labeler.video.start_handler")
    (depth,) = [r for acts, r in statements if acts == "sqs:GetQueueAttributes" or acts == ["sqs:GetQueueAttributes"]]
    assert depth["Fn::GetAtt"][0].startswith("VideoStartQueue")
    alarm = the(template, "AWS::CloudWatch::Alarm", {"AlarmDescription": Match.string_like_regexp("Backfilled videos")})
    assert alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0].startswith("VideoBackfillStartDeadLetters")
