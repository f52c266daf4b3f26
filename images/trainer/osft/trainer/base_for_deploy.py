"""The base model, saved for deployment when the gate rejects the tuned one (``deploy.when_rejected: base``).

The evaluate stage saves the base model as it scored it: with the train stage's max length and the spec's
prefixes and pooling. It exports the model as the train stage exports the tuned one
(``training.export``). The register stage then deploys that folder and its exports in the tuned
model's place, so the base that ships is the base that was measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from osft.common.spec import RunSpec
from osft.common.stage import StageContext
from osft.trainer.models import apply_usage, load_sentence_transformer, model_usage

BASE_MODEL_DIR = "base_model"


def base_deploy_wanted(spec: RunSpec) -> bool:
    """Whether a rejected tuned model is to be replaced by the base model (the spec allows it only with the gate)."""
    return spec.deploy is not None and spec.deploy.when_rejected == "base"


def save_base_for_deploy(ctx: StageContext, max_seq_length: int | None) -> tuple[str, dict[str, Any], list[str]]:
    """Save and export the base model in the stage folder: (run-relative folder, export records, stage outputs)."""
    from osft.trainer.export import EXPORTS_DIR, export_all

    spec = ctx.spec
    model = load_sentence_transformer(spec.model.base, Path(ctx.resolve(".")), max_seq_length=max_seq_length)
    apply_usage(model, model_usage(spec.model))
    folder = ctx.output_path(BASE_MODEL_DIR)
    model.save(str(folder))
    name = f"{spec.model.output_name or spec.name}-base"
    exports = export_all(model, folder, ctx.workdir, spec.training.export, name, log=ctx.log.info, stage=ctx.stage)
    ctx.log.info("base_model_saved_for_deploy", model=spec.model.base, folder=BASE_MODEL_DIR, exports=sorted(exports))
    return f"{ctx.stage}/{BASE_MODEL_DIR}", exports, [BASE_MODEL_DIR] + ([EXPORTS_DIR] if exports else [])


def base_deploy_fingerprint(spec: RunSpec) -> dict[str, Any] | None:
    """What the saved base depends on beyond the evaluate stage's own inputs; None when nothing is saved."""
    if not base_deploy_wanted(spec):
        return None
    return {
        "when_rejected": "base",
        "export": spec.training.export.fingerprint_material(),
        "name": spec.model.output_name or spec.name,
    }
