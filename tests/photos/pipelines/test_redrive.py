"""`manage.py redrive_dead_letters`: SQS's own redrive (StartMessageMoveTask) from the
labeler's DLQ back to its queue. moto has no message move tasks: botocore's Stubber
checks every request and response against SQS's service model instead."""

from __future__ import annotations

from io import StringIO

import boto3
import pytest
from botocore.stub import Stubber
from django.core.management import CommandError, call_command

from photos.pipelines import aws

DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/labeler-dlq"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/labeler"
DLQ_ARN = "arn:aws:sqs:eu-west-1:123456789012:labeler-dlq"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:labeler"


@pytest.fixture
def sqs(settings, monkeypatch):
    settings.LABELER_DLQ_URL, settings.LABELER_QUEUE_URL = DLQ_URL, QUEUE_URL
    client = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(aws, "sqs_client", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def arn_of(stubber, url, arn):
    stubber.add_response("get_queue_attributes", {"Attributes": {"QueueArn": arn}},
                         {"QueueUrl": url, "AttributeNames": ["QueueArn"]})


def run(*args) -> str:
    out = StringIO()
    call_command("redrive_dead_letters", *args, stdout=out)
    return out.getvalue()


def test_dead_letters_are_moved_back_at_the_pace_asked_for(sqs):
    arn_of(sqs, DLQ_URL, DLQ_ARN)
    sqs.add_response("get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": "240"}},
                     {"QueueUrl": DLQ_URL, "AttributeNames": ["ApproximateNumberOfMessages"]})
    arn_of(sqs, QUEUE_URL, QUEUE_ARN)
    sqs.add_response("start_message_move_task", {"TaskHandle": "handle-1"},
                     {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN, "MaxNumberOfMessagesPerSecond": 20})

    out = run("--per-second", "20")

    assert "Moving about 240 messages back to the labeler's queue, 20 a second (about 12 s)" in out
    assert "--cancel handle-1" in out


def test_the_backfills_dead_letters_go_back_to_the_backfills_queue(sqs, settings):
    settings.LABELER_BACKFILL_DLQ_URL, settings.LABELER_BACKFILL_QUEUE_URL = DLQ_URL + "-backfill", QUEUE_URL + "-backfill"
    arn_of(sqs, DLQ_URL + "-backfill", DLQ_ARN + "-backfill")
    sqs.add_response("get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": "3"}},
                     {"QueueUrl": DLQ_URL + "-backfill", "AttributeNames": ["ApproximateNumberOfMessages"]})
    arn_of(sqs, QUEUE_URL + "-backfill", QUEUE_ARN + "-backfill")
    sqs.add_response("start_message_move_task", {"TaskHandle": "handle-2"},
                     {"SourceArn": DLQ_ARN + "-backfill", "DestinationArn": QUEUE_ARN + "-backfill",
                      "MaxNumberOfMessagesPerSecond": 10})

    assert "back to the backfill's queue" in run("--backfill")


def test_an_empty_dlq_starts_nothing(sqs):
    arn_of(sqs, DLQ_URL, DLQ_ARN)
    sqs.add_response("get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": "0"}},
                     {"QueueUrl": DLQ_URL, "AttributeNames": ["ApproximateNumberOfMessages"]})

    assert run() == "The dead-letter queue is empty: nothing to redrive.\n"


def test_status_lists_the_move_tasks(sqs):
    arn_of(sqs, DLQ_URL, DLQ_ARN)
    sqs.add_response("list_message_move_tasks", {"Results": [
        {"TaskHandle": "handle-1", "Status": "RUNNING", "SourceArn": DLQ_ARN, "ApproximateNumberOfMessagesMoved": 40,
         "ApproximateNumberOfMessagesToMove": 240},
        {"Status": "FAILED", "SourceArn": DLQ_ARN, "ApproximateNumberOfMessagesMoved": 3, "FailureReason": "AccessDenied"},
    ]}, {"SourceArn": DLQ_ARN, "MaxResults": 10})

    out = run("--status")

    assert "RUNNING: 40 of 240 moved (handle handle-1)" in out and "FAILED: 3 of ? moved, failed: AccessDenied" in out


def test_without_the_queues_configured_it_says_which_settings(settings):
    settings.LABELER_DLQ_URL = ""
    with pytest.raises(CommandError, match="LABELER_DLQ_URL and LABELER_QUEUE_URL must be set"):
        run()


def test_a_pace_sqs_refuses_is_refused_before_any_call(sqs):
    with pytest.raises(CommandError, match="between 1 and 500"):
        run("--per-second", "501")
