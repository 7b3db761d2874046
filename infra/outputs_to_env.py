"""Turn `cdk deploy --outputs-file cdk-outputs.json` into the app's environment settings.

    cd infra && npx cdk deploy --outputs-file cdk-outputs.json
    python -m infra.outputs_to_env infra/cdk-outputs.json > .env.aws

Prints one KEY=value line per setting Django needs (see README "Configuration").
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

STACK = "MediaPipeline"
SETTINGS = {
    "MediaBucketName": "AWS_STORAGE_BUCKET_NAME",
    "LabelsTableName": "LABELS_TABLE_NAME",
    "Region": "AWS_REGION",
    "LabelerQueueUrl": "LABELER_QUEUE_URL",
    "DeadLetterQueueUrl": "LABELER_DLQ_URL",
    "BackfillQueueUrl": "LABELER_BACKFILL_QUEUE_URL",
    "BackfillDeadLetterQueueUrl": "LABELER_BACKFILL_DLQ_URL",
}


def settings_from_outputs(outputs: dict, stack: str = STACK) -> dict[str, str]:
    if stack not in outputs:
        raise SystemExit(f"stack {stack!r} not in the outputs file (found: {', '.join(outputs) or 'none'})")
    values = outputs[stack]
    missing = [name for name in SETTINGS if name not in values]
    if missing:
        raise SystemExit(f"outputs missing from stack {stack!r}: {', '.join(missing)}")
    env = {setting: str(values[name]) for name, setting in SETTINGS.items()}
    env.update(PHOTOS_PIPELINE="aws", PHOTOS_STORAGE="s3")
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outputs_file")
    parser.add_argument("--stack", default=STACK)
    args = parser.parse_args(argv)
    with open(args.outputs_file) as handle:
        env = settings_from_outputs(json.load(handle), args.stack)
    for key, value in env.items():
        sys.stdout.write(f"{key}={shlex.quote(value)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
