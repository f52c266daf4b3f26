"""The local pipeline: extract → querygen → train → evaluate (→ register) in one process, in order."""

from __future__ import annotations

import glob
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from osft.common.errors import OsftError, SpecError, StorageError
from osft.common.estimate import check_budget, estimate_from_run_dir
from osft.common.failures import FAILURE_FILE, failure_recorded, read_failure
from osft.common.logging import get_logger
from osft.common.manifests import StageManifest
from osft.common.registry import load_stage
from osft.common.sagemaker_jobs import check_can_run_jobs, job_spec_uri, run_stage_as_job, stages_on_sagemaker
from osft.common.spec import RunSpec
from osft.common.stage import (
    MANIFEST_FILE,
    STAGE_ORDER,
    ensure_run_dir,
    load_spec,
    read_manifest,
    resolve_spec_path,
    run_stage,
)
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
    stages = pipeline_stages(spec)
    _check_stage_options(spec, stages, force, until)
    spec_uri = spec_uri if is_s3(spec_uri) else str(Path(spec_uri).resolve())
    run_dir = run_dir or default_run_dir(spec, runs_root)
    on_sagemaker = stages_on_sagemaker(spec, _stages_reached(stages, until))
    # Checked before anything starts: a job needs an S3 run folder, the trainer image and a role.
    job_settings = check_can_run_jobs(spec, spec_uri, run_dir) if on_sagemaker else None
    check_local_inputs(spec, spec_uri)
    check_run_folder_owner(spec, run_dir)
    ensure_run_dir(run_dir)
    Location(join(run_dir, "spec.json")).write_text(spec.model_dump_json(indent=2, exclude_unset=True))
    log = get_logger(run_id=spec.name)
    log.info("pipeline_started", run_dir=run_dir, stages=stages)
    result = PipelineResult(spec=spec, run_dir=run_dir)
    for name in stages:
        definition = load_stage(name)
        if job_settings is not None and name in on_sagemaker:
            job_spec = job_spec_uri(spec_uri, run_dir)  # the spec.json written above when the spec is local
            # The job's own run_stage records what fails inside it (kept); this records a job that never got there.
            with failure_recorded(run_dir, name):
                manifest, skipped = run_stage_as_job(
                    definition, spec, job_spec, run_dir, job_settings, force=name in force
                )
        else:
            manifest, skipped = run_stage(definition, spec_uri, run_dir, force=name in force)
        result.outcomes.append(StageOutcome(stage=name, manifest=manifest, skipped=skipped))
        # The corpus is known and nothing is spent yet: write estimate.json, stop here if the stages this
        # run reaches would cost more than max_cost_usd.
        if name == "extract":
            reached = _stages_reached(stages, until) if until else None
            check_budget(estimate_from_run_dir(spec, run_dir, spec_uri=spec_uri), reached)
        if name == until:
            break
    log.info("pipeline_finished", run_dir=run_dir)
    return result


def missing_local_inputs(spec: RunSpec, spec_uri: str) -> list[str]:
    """Files the spec names on this machine that are not there, by field path.

    Checked before the run starts: judged queries, for one, are read only by the evaluate stage, after
    training. Paths on S3 are left to the stages that read them.
    """

    def local(path: str) -> Path | None:
        resolved = resolve_spec_path(spec_uri, path)
        return None if is_s3(resolved) else Path(resolved)

    problems = []
    if spec.source.type in ("local", "pairs") and (path := local(spec.source.path)) is not None:
        if any(ch in spec.source.path for ch in "*?["):
            if not glob.glob(str(path), recursive=True):
                problems.append(f"source.path: {path}: no file matches this pattern")
        elif not path.exists():
            problems.append(f"source.path: {path}: no such file or folder")
    querygen = spec.querygen
    named = {"querygen.examples_path": querygen.examples_path, "querygen.prompt_dir": querygen.prompt_dir}
    if querygen.query_log is not None:
        named["querygen.query_log.path"] = querygen.query_log.path
    for field_path, value in named.items():
        if value is not None and (path := local(value)) is not None and not path.exists():
            problems.append(f"{field_path}: {path}: no such file or folder")
    if spec.evaluation.judged is not None:
        problems += _missing_judged_files(spec, local)
    return problems


def _missing_judged_files(spec: RunSpec, local: Callable[[str], Path | None]) -> list[str]:
    """The BEIR files of ``evaluation.judged`` that are missing: the folder, its split's qrels, its queries."""
    judged = spec.evaluation.judged
    assert judged is not None
    folder = local(judged.path)
    if folder is None:
        return []
    if not folder.is_dir():
        return [f"evaluation.judged.path: {folder}: no such folder (expected queries.jsonl and qrels/<split>.tsv)"]
    problems = []
    qrels = folder / "qrels" / f"{judged.split}.tsv"
    if not qrels.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        found = f"splits there: {', '.join(splits)}" if splits else "no qrels/<split>.tsv there"
        problems.append(f"evaluation.judged.split: {qrels}: no such file ({found})")
    if not (folder / judged.queries_file).is_file():
        problems.append(f"evaluation.judged.queries_file: {folder / judged.queries_file}: no such file")
    return problems


def check_local_inputs(spec: RunSpec, spec_uri: str) -> None:
    """Raise SpecError naming every file the spec names on this machine that is missing."""
    problems = missing_local_inputs(spec, spec_uri)
    if problems:
        raise SpecError(spec_uri, problems)


def run_folder_owner(run_dir: str) -> str | None:
    """The name of the spec whose run a folder holds, from the spec.json ``osft run`` wrote there.

    Stage folders copied in without it (a benchmark sharing extract and querygen) do not claim it.
    """
    spec_copy = Location(join(run_dir, "spec.json"))
    if not spec_copy.exists():
        return None
    try:
        name = json.loads(spec_copy.read_text()).get("name")
    except (ValueError, AttributeError, OsftError):
        return None
    return name if isinstance(name, str) else None


def check_run_folder_owner(spec: RunSpec, run_dir: str) -> None:
    """Refuse a run folder that holds another spec's run: running there would overwrite its stages."""
    owner = run_folder_owner(run_dir)
    if owner is not None and owner != spec.name:
        raise OsftError(
            f"{run_dir}: holds the run of spec '{owner}', not of '{spec.name}'; running here would overwrite it",
            hint=f"give this spec a run folder of its own (--run-dir; osft run's default is runs/{spec.name}), "
            f"or delete {run_dir} to start over there",
        )


def _stages_reached(stages: list[str], until: str | None) -> list[str]:
    return stages[: stages.index(until) + 1] if until in stages else stages


def _check_stage_options(spec: RunSpec, stages: list[str], force: tuple[str, ...], until: str | None) -> None:
    """A --force that would do nothing is a mistake worth saying, not a silent no-op."""
    for name in force:
        if name not in stages:
            raise OsftError(
                f"--force {name}: this spec has no {name} stage",
                hint="add a deploy section to the spec to register a model" if name == "register" else None,
            )
        if until in stages and stages.index(name) > stages.index(until):
            raise OsftError(
                f"--force {name} with --until {until}: the run stops before {name}",
                hint=f"drop --until, or give --until {name} or a later stage",
            )


@dataclass
class StageStatus:
    stage: str
    state: str
    manifest: StageManifest | None
    error: str | None = None
    """The error a failed stage stopped with, and when."""
    failed_at: str | None = None


def run_status(run_dir: str) -> list[StageStatus]:
    """What is done in a run folder: completed, failed or interrupted (both run again) or not started."""
    if not is_s3(run_dir) and Path(run_dir).is_file():
        raise StorageError(f"{run_dir}: is a file, not a run folder", hint="give the run folder, e.g. runs/<spec name>")
    if not Location(run_dir).has_content():
        raise StorageError(
            f"{run_dir}: no run folder here",
            hint="runs live in runs/<spec name> unless --run-dir or --runs-root said otherwise",
        )
    if not _looks_like_a_run_folder(run_dir):
        raise StorageError(
            f"{run_dir}: not a run folder (no spec.json and no stage folders)", hint=_run_folders_hint(run_dir)
        )
    return [_stage_status(run_dir, stage) for stage in STAGE_ORDER]


def _stage_status(run_dir: str, stage: str) -> StageStatus:
    manifest = read_manifest(run_dir, stage)
    if manifest is not None:
        return StageStatus(stage, "completed", manifest)
    failure = read_failure(run_dir, stage)
    if failure is not None:
        return StageStatus(stage, "failed (runs again on next run)", None, failure["error"], failure.get("failed_at"))
    if Location(join(run_dir, stage)).has_content():
        return StageStatus(stage, "interrupted (resumes on next run)", None)
    return StageStatus(stage, "not started", None)


def _looks_like_a_run_folder(run_dir: str) -> bool:
    """Whether ``osft run`` or a stage wrote here: its spec.json or a stage folder."""
    return any(Location(join(run_dir, name)).has_content() for name in ("spec.json", *STAGE_ORDER))


def _run_folders_hint(folder: str) -> str:
    """Name the run folders inside ``folder`` (a runs root given instead of a run folder), if any."""
    # Not listed on S3: a runs root there may hold every output of every run.
    runs = [] if is_s3(folder) else sorted(p.parent.name for p in Path(folder).glob("*/spec.json"))
    if runs:
        shown = ", ".join(runs[:10]) + (", ..." if len(runs) > 10 else "")
        return f"this looks like a folder of runs; give one of them: {shown}"
    return "give the run folder, e.g. runs/<spec name>"


__all__ = ["FAILURE_FILE", "MANIFEST_FILE", "PipelineResult", "StageStatus", "run_pipeline", "run_status"]
