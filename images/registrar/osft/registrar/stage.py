"""The register stage: deploy an accepted model and register it in OpenSearch."""

from __future__ import annotations

import json

from osft.common.errors import OsftError
from osft.common.manifests import RegisterStats
from osft.common.stage import StageContext, StageDefinition, StageResult

REGISTRATION_FILE = "registration.json"


def run(ctx: StageContext) -> StageResult:
    deploy = ctx.spec.deploy
    if deploy is None:
        raise OsftError("the spec has no deploy section, so there is nothing to register")
    evaluation = ctx.upstream("evaluate")
    if deploy.require_gate and not evaluation.stats.accepted:
        reason = f"the evaluation gate rejected the model: {evaluation.stats.reason}"
        ctx.output_path(REGISTRATION_FILE).write_text(json.dumps({"deployed": False, "reason": reason}, indent=2))
        ctx.log.info("deployment_skipped", reason=reason)
        return StageResult(stats=RegisterStats(skipped_reason=reason), outputs=[REGISTRATION_FILE])
    raise OsftError("deployment targets are not supported by this registrar version")


STAGE = StageDefinition(name="register", upstream=("train", "evaluate"), spec_sections=("deploy", "model"), run=run)
