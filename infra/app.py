#!/usr/bin/env python3
"""CDK app: `make synth` (offline) or `npx cdk deploy` from infra/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as `python app.py` from infra/, Python puts infra/ first on the path, where
    # our constructs/ package would shadow the `constructs` library: use the repo root.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.stacks.media_pipeline import MediaPipelineStack  # noqa: E402


def build(app: cdk.App, env: cdk.Environment | None = None) -> MediaPipelineStack:
    """The stack, with cdk-nag's AwsSolutions checks run at synthesis."""
    # `-c account=... -c region=...` win over the CLI's own guess from the AWS config.
    env = env or cdk.Environment(
        account=app.node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT"),
        region=app.node.try_get_context("region") or os.environ.get("CDK_DEFAULT_REGION") or "us-east-1",
    )
    stack = MediaPipelineStack(app, "MediaPipeline", env=env, description="mediaapp: photo labelling pipeline")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


if __name__ == "__main__":
    app = cdk.App()
    build(app)
    app.synth()
