"""The local pipeline: extract → querygen → train → evaluate (→ register) in one process, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from osft.common.estimate import check_budget, estimate_from_run_dir
from osft.common.logging import get_logger
from osft.common.manifests import StageManifest
from osft.common.registry import load_stage
from osft.common.spec import RunSpec
from osft.common.stage import MANIFEST_FILE, STAGE_ORDER, WORK_DIR, load_spec, read_manifest, run_stage
from osft.common.storage import Location, is_s3, join


@dataclass
class StageOutcome:
    stage: str
    manifest: StageManifest
    skipped: bool


@dataclass
class PipelineResult:
    spec: RunSpec
    run_dir: str
    outcomes: list[StageOutcome] = field(default_factory=list)

    def manifest(self, stage: str) -> StageManifest | None:
        return next((o.manifest for o in self.outcomes if o.stage == stage), None)


def default_run_dir(spec: RunSpec, runs_root: str) -> str:
    return join(runs_root, spec.name)


def pipeline_stages(spec: RunSpec) -> list[str]:
    return [s for s in STAGE_ORDER if s != "register" or spec.deploy is not None]


def run_pipeline(
    spec_uri: str,
    *,
    run_dir: str | None = None,
    runs_root: str = "runs",
    force: tuple[str, ...] = (),
    until: str | None = None,
) -> PipelineResult:
    """Run every stage the spec needs, skipping those whose outputs already match their inputs."""
    spec = load_spec(spec_uri)
    spec_uri = spec_uri if is_s3(spec_uri) else str(Path(spec_uri).resolve())
    run_dir = run_dir or default_run_dir(spec, runs_root)
    Location(join(run_dir, "spec.json")).write_text(spec.model_dump_json(indent=2, exclude_unset=True))
    log = get_logger(run_id=spec.name)
    log.info("pipeline_started", run_dir=run_dir, stages=pipeline_stages(spec))
    result = PipelineResult(spec=spec, run_dir=run_dir)
    for name in pipeline_stages(spec):
        definition = load_stage(name)
        manifest, skipped = run_stage(definition, spec_uri, run_dir, force=name in force)
        result.outcomes.append(StageOutcome(stage=name, manifest=manifest, skipped=skipped))
        # The corpus is known and nothing is spent yet: write estimate.json, stop here if over max_cost_usd.
        if name == "extract":
            check_budget(estimate_from_run_dir(spec, run_dir, spec_uri=spec_uri))
        if name == until:
            break
    log.info("pipeline_finished", run_dir=run_dir)
    return result


@dataclass
class StageStatus:
    stage: str
    state: str
    manifest: StageManifest | None


def run_status(run_dir: str) -> list[StageStatus]:
    """What is done in a run folder: completed, interrupted (will resume) or not started."""
    statuses = []
    for stage in STAGE_ORDER:
        manifest = read_manifest(run_dir, stage)
        if manifest is not None:
            statuses.append(StageStatus(stage, "completed", manifest))
        elif Location(join(run_dir, stage, WORK_DIR)).exists() or Location(join(run_dir, stage)).exists():
            statuses.append(StageStatus(stage, "interrupted (resumes on next run)", None))
        else:
            statuses.append(StageStatus(stage, "not started", None))
    return statuses


__all__ = ["MANIFEST_FILE", "PipelineResult", "StageStatus", "run_pipeline", "run_status"]
