"""Send the labeler's dead letters back to its queue, with SQS's own redrive
(StartMessageMoveTask), at a pace Rekognition can take; or show how a redrive is going.

    python manage.py redrive_dead_letters                  # every message, 10 a second
    python manage.py redrive_dead_letters --per-second 50
    python manage.py redrive_dead_letters --status         # the DLQ's move tasks
    python manage.py redrive_dead_letters --cancel HANDLE
    python manage.py redrive_dead_letters --backfill       # the backfill's DLQ, back to its queue

Run it with an operator's credentials (sqs:StartMessageMoveTask, ReceiveMessage,
DeleteMessage and GetQueueAttributes on the DLQ, SendMessage on the queue): the web
app's role has none of them. Look at why messages failed first (the labeler's logs, by
message id): a message that failed for a lasting reason fails again. docs/aws.md has the
runbook.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from photos.pipelines import aws


class Command(BaseCommand):
    help = "Move the labeler's dead letters back to its queue (SQS StartMessageMoveTask), or show the moves."

    def add_arguments(self, parser):
        parser.add_argument("--per-second", type=int, default=10,
                            help="messages moved per second (1-500; default 10: the labeler's default pace)")
        parser.add_argument("--status", action="store_true", help="list the DLQ's recent move tasks and stop")
        parser.add_argument("--cancel", metavar="TASK_HANDLE", help="cancel a running move task")
        parser.add_argument("--backfill", action="store_true",
                            help="the backfill's dead-letter queue, back to the backfill's queue")

    def handle(self, *args, per_second: int, status: bool, cancel: str | None, backfill: bool = False, **options):
        names = (("LABELER_BACKFILL_DLQ_URL", "LABELER_BACKFILL_QUEUE_URL") if backfill
                 else ("LABELER_DLQ_URL", "LABELER_QUEUE_URL"))
        dlq_url, queue_url = (getattr(settings, name, "") for name in names)
        if not dlq_url or not queue_url:
            raise CommandError(f"{names[0]} and {names[1]} must be set (the stack's outputs; "
                               "python -m infra.outputs_to_env writes them).")
        if not 1 <= per_second <= 500:
            raise CommandError("--per-second must be between 1 and 500 (SQS's limit).")
        sqs = aws.sqs_client()
        dlq_arn = self._arn(sqs, dlq_url)
        if cancel:
            moved = sqs.cancel_message_move_task(TaskHandle=cancel).get("ApproximateNumberOfMessagesMoved", 0)
            self.stdout.write(f"Cancelled; {moved} messages had been moved.")
            return
        if status:
            tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10).get("Results", [])
            if not tasks:
                self.stdout.write("No move task for this dead-letter queue.")
            for task in tasks:
                self.stdout.write(f"{task['Status']}: {task.get('ApproximateNumberOfMessagesMoved', 0)} of "
                                  f"{task.get('ApproximateNumberOfMessagesToMove', '?')} moved"
                                  + (f", failed: {task['FailureReason']}" if task.get("FailureReason") else "")
                                  + (f" (handle {task['TaskHandle']})" if task.get("TaskHandle") else ""))
            return
        waiting = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        count = int(waiting["Attributes"].get("ApproximateNumberOfMessages", 0))
        if not count:
            self.stdout.write("The dead-letter queue is empty: nothing to redrive.")
            return
        handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=self._arn(sqs, queue_url),
                                             MaxNumberOfMessagesPerSecond=per_second)["TaskHandle"]
        self.stdout.write(f"Moving about {count} messages back to the {'backfill' if backfill else 'labeler'}'s queue, "
                          f"{per_second} a second "
                          f"(about {max(1, round(count / per_second))} s). Follow it with --status; "
                          f"cancel with --cancel {handle}")

    @staticmethod
    def _arn(sqs, url: str) -> str:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
