"""The train and evaluate stages as SageMaker training jobs, for ``osft run`` with ``training.compute: "sagemaker"``.

The request is the one the Train and Evaluate states of ``terraform/statemachine/pipeline.asl.json``
send: the trainer image with ``ContainerEntrypoint ["train"]`` and hyperparameters ``spec``,
``run_dir`` and ``stage``, so the job runs the stage on its normal code path and writes its
outputs and manifest to the S3 run folder; the runner then carries on from that manifest.
A stage whose manifest is already up to date starts no job, so a re-run costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osft.common.aws_clients import sagemaker_client
from osft.common.errors import CredentialsError, OsftError, StorageError
from osft.common.logging import get_logger
from osft.common.manifests import StageManifest
from osft.common.spec import RunSpec
from osft.common.spec.training import SageMakerTraining
from osft.common.stage import MANIFEST_FILE, WORK_DIR, StageDefinition, is_up_to_date, read_manifest
from osft.common.storage import Location, is_s3, join

JOB_STAGES: tuple[str, ...] = ("train", "evaluate")
TRAINER_IMAGE_ENV = "OSFT_TRAINER_IMAGE_URI"
ROLE_ENV = "OSFT_SAGEMAKER_ROLE_ARN"
NAME_PREFIX_ENV = (
    "OSFT_NAME_PREFIX"  # the Terraform stack's name_prefix; its Step Functions role may only start <prefix>-*
)
KMS_KEY_ENV = "OSFT_KMS_KEY_ARN"
DEFAULT_NAME_PREFIX = "osft"
CHECKPOINT_FOLDER = "_checkpoints"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
MAX_WAIT_LIMIT_SECONDS = 2_419_200  # SageMaker's ceiling for MaxWaitTimeInSeconds (28 days)
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
POLL_SECONDS = 60
STARTUP_ALLOWANCE_SECONDS = 3_600  # instance provisioning and image pull come before MaxRuntimeInSeconds counts
JOB_NAME_SUFFIX = {"train": "train", "evaluate": "eval"}
JOB_RECORD_FILE = "sagemaker-job.json"  # in <run_dir>/<stage>/: the job this stage last started
RUNNING_STATES = ("InProgress", "Stopping")
ECR_REGION = re.compile(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/")


@dataclass(frozen=True)
class JobSettings:
    """What the jobs need beyond the spec, from the environment (the ECS tasks of the stack get the same)."""

    image_uri: str
    role_arn: str
    name_prefix: str = DEFAULT_NAME_PREFIX
    kms_key_arn: str | None = None

    @property
    def region(self) -> str | None:
        """The image's ECR region: SageMaker pulls the image and writes the outputs in the job's region."""
        match = ECR_REGION.match(self.image_uri)
        return match.group(1) if match else None


def stages_on_sagemaker(spec: RunSpec, stages: list[str]) -> list[str]:
    """Which of ``stages`` (those the run will reach) run as SageMaker jobs: none unless compute is sagemaker."""
    return [s for s in stages if s in JOB_STAGES] if spec.training.compute == "sagemaker" else []


def _required_env(name: str, what: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise OsftError(
            f"training.compute is 'sagemaker' but ${name} is not set",
            hint=f"export {name}=<{what}> (Terraform output: {what}), or set training.compute to 'local'",
        )
    return value


def job_settings_from_env() -> JobSettings:
    return JobSettings(
        image_uri=_required_env(TRAINER_IMAGE_ENV, "ecr_repository_urls.trainer:<image tag>"),
        role_arn=_required_env(ROLE_ENV, "sagemaker_execution_role_arn"),
        name_prefix=os.environ.get(NAME_PREFIX_ENV, "").strip() or DEFAULT_NAME_PREFIX,
        kms_key_arn=os.environ.get(KMS_KEY_ENV, "").strip() or None,
    )


def _local_paths_jobs_cannot_read(spec: RunSpec, spec_uri: str) -> list[str]:
    """Spec fields naming files on this machine, which a SageMaker job cannot see."""
    found = []
    if spec.evaluation.judged is not None and not is_s3(spec.evaluation.judged.path):
        found.append("evaluation.judged.path")
    if not is_s3(spec_uri):
        base_dir = Path(spec_uri).parent
        models = {"model.base": spec.model.base}
        if spec.training.distillation.enabled:
            models["training.distillation.teacher"] = spec.training.distillation.teacher
        found += [field for field, name in models.items() if _is_local_path(name, base_dir)]
    return found


def _is_local_path(name: str, base_dir: Path) -> bool:
    """Whether a model name is a folder on this machine (a hub id, or the packaged MiniLM, is not)."""
    candidate = Path(name).expanduser()
    return (candidate if candidate.is_absolute() else base_dir / candidate).exists()


def check_can_run_jobs(spec: RunSpec, spec_uri: str, run_dir: str) -> JobSettings:
    """Everything a job needs that can be checked before the run starts: an S3 run folder, the image, the role."""
    if not is_s3(run_dir):
        raise OsftError(
            f"training.compute is 'sagemaker' but the run folder {run_dir} is local: a SageMaker job reads its "
            "inputs from and writes its outputs to S3",
            hint="give an S3 run folder: osft run SPEC --run-dir s3://<bucket>/runs/<name> (a local spec is "
            "uploaded to <run dir>/spec.json), or set training.compute to 'local'",
        )
    local = _local_paths_jobs_cannot_read(spec, spec_uri)
    if local:
        raise OsftError(
            f"training.compute is 'sagemaker' but {', '.join(local)} name(s) files on this machine, "
            "which a SageMaker job cannot read",
            hint="use a model hub id for models, or set training.compute to 'local'",
        )
    return job_settings_from_env()


def job_spec_uri(spec_uri: str, run_dir: str) -> str:
    """The spec the job reads: the given one when on S3, else the copy the runner keeps in the run folder."""
    return spec_uri if is_s3(spec_uri) else join(run_dir, "spec.json")


def run_name_of(run_dir: str) -> str:
    """The run folder's own name, as the state machine names its runs after the execution (``runs/<name>``)."""
    return run_dir.rstrip("/").rsplit("/", 1)[-1]


def training_job_name(prefix: str, run_name: str, stage: str, unique: str | None = None) -> str:
    """``<prefix>-<run name, cut>-train|eval-<8 hex>``: within SageMaker's 63 characters, as the state machine."""
    base = re.sub(r"[^a-zA-Z0-9-]", "-", run_name)[: max(0, 47 - len(prefix))]
    return f"{prefix}-{base}-{JOB_NAME_SUFFIX[stage]}-{(unique or uuid.uuid4().hex)[:8]}"


def stopping_condition(settings: SageMakerTraining) -> dict[str, int]:
    """``MaxRuntimeInSeconds``, plus ``MaxWaitTimeInSeconds`` (twice the runtime, capped) for spot."""
    condition = {"MaxRuntimeInSeconds": settings.max_run_seconds}
    if settings.use_spot:
        condition["MaxWaitTimeInSeconds"] = min(settings.max_run_seconds * 2, MAX_WAIT_LIMIT_SECONDS)
    return condition


def training_job_request(
    stage: str, spec: RunSpec, spec_uri: str, run_dir: str, settings: JobSettings, job_name: str
) -> dict[str, Any]:
    """The CreateTrainingJob arguments of the state machine's Train or Evaluate state."""
    sagemaker = spec.training.sagemaker
    output: dict[str, str] = {"S3OutputPath": join(run_dir, stage, "sagemaker-output")}
    if settings.kms_key_arn:
        output["KmsKeyId"] = settings.kms_key_arn
    environment = {"OSFT_LOG_JSON": "1", "OSFT_PROGRESS": "0"}
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "RoleArn": settings.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": settings.image_uri,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["train"],
        },
        "HyperParameters": {"spec": spec_uri, "run_dir": run_dir, "stage": stage},
        "OutputDataConfig": output,
        "ResourceConfig": {
            "InstanceType": sagemaker.instance_type,
            "InstanceCount": sagemaker.instance_count if stage == "train" else 1,
            "VolumeSizeInGB": sagemaker.volume_size_gb,
        },
        "EnableManagedSpotTraining": sagemaker.use_spot,
        "StoppingCondition": stopping_condition(sagemaker),
        "Environment": environment,
        "Tags": [{"Key": "osft:run", "Value": run_name_of(run_dir)}, {"Key": "osft:stage", "Value": stage}],
    }
    if stage == "train":  # a spot interruption restarts the job, which resumes from the synced checkpoints
        request["CheckpointConfig"] = {
            "S3Uri": join(run_dir, "train", CHECKPOINT_FOLDER),
            "LocalPath": CHECKPOINT_LOCAL_PATH,
        }
        environment["OSFT_CHECKPOINT_DIR"] = CHECKPOINT_LOCAL_PATH
    return request


def _aws_error(exc: Exception, action: str) -> OsftError:
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoCredentialsError):
        return CredentialsError(f"{action}: no AWS credentials found", hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID")
    if isinstance(exc, NoRegionError):
        return OsftError(f"{action}: no AWS region", hint="set AWS_REGION, or use an ECR image URI, which names one")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return OsftError(
            f"{action}: {error.get('Code', 'error')}: {error.get('Message', exc)}",
            hint=f"check the role, the image and the SageMaker quota for the instance type ({ROLE_ENV}, "
            f"{TRAINER_IMAGE_ENV}, training.sagemaker)",
        )
    return OsftError(f"{action}: {exc}")


def logs_hint(job_name: str, run_dir: str, stage: str) -> str:
    resume = f"; training resumes from {join(run_dir, 'train', CHECKPOINT_FOLDER)}" if stage == "train" else ""
    return (
        f"the job's logs are in CloudWatch log group {LOG_GROUP}, streams {job_name}/algo-1-*: "
        f"aws logs tail {LOG_GROUP} --log-stream-name-prefix {job_name}; "
        f"fix the cause and run again (finished stages are skipped{resume})"
    )


def job_failure(description: dict[str, Any], stage: str, run_dir: str) -> OsftError:
    name = description.get("TrainingJobName", "?")
    status = description.get("TrainingJobStatus", "unknown")
    reason = description.get("FailureReason") or description.get("SecondaryStatus") or "no reason given"
    return OsftError(f"SageMaker {stage} job {name} ended {status}: {reason}", hint=logs_hint(name, run_dir, stage))


def max_wait_seconds(spec: RunSpec) -> int:
    condition = stopping_condition(spec.training.sagemaker)
    return condition.get("MaxWaitTimeInSeconds", condition["MaxRuntimeInSeconds"]) + STARTUP_ALLOWANCE_SECONDS


def wait_for_job(client: Any, job_name: str, stage: str, run_dir: str, timeout_seconds: int) -> dict[str, Any]:
    """Wait until the job completes; a clear error with SageMaker's FailureReason when it fails or stops."""
    from botocore.exceptions import WaiterError

    waiter = client.get_waiter("training_job_completed_or_stopped")
    try:
        waiter.wait(
            TrainingJobName=job_name,
            WaiterConfig={"Delay": POLL_SECONDS, "MaxAttempts": math.ceil(timeout_seconds / POLL_SECONDS) + 1},
        )
    except WaiterError as exc:
        last = exc.last_response or {}
        if "TrainingJobStatus" not in last:
            message = last.get("Error", {}).get("Message") or str(exc)
            raise OsftError(
                f"SageMaker {stage} job {job_name}: {message}", hint=logs_hint(job_name, run_dir, stage)
            ) from None
        if last["TrainingJobStatus"] in ("InProgress", "Stopping"):
            raise OsftError(
                f"SageMaker {stage} job {job_name} still {last['TrainingJobStatus']} after {timeout_seconds} s",
                hint=f"it keeps running; aws sagemaker describe-training-job --training-job-name {job_name}",
            ) from None
        raise job_failure(last, stage, run_dir) from None
    description = client.describe_training_job(TrainingJobName=job_name)
    if description["TrainingJobStatus"] != "Completed":
        raise job_failure(description, stage, run_dir)
    return description


def _discard_previous_attempt(run_dir: str, stage: str) -> None:
    """A forced re-run of a completed stage starts over, as ``run_stage`` does locally: no manifest, no kept work."""
    Location(join(run_dir, stage, MANIFEST_FILE)).delete_tree()
    Location(join(run_dir, stage, WORK_DIR)).delete_tree()
    if stage == "train":
        Location(join(run_dir, "train", CHECKPOINT_FOLDER)).delete_tree()


def run_stage_as_job(
    definition: StageDefinition,
    spec: RunSpec,
    spec_uri: str,
    run_dir: str,
    settings: JobSettings,
    *,
    force: bool = False,
) -> tuple[StageManifest, bool]:
    """Run one stage as a SageMaker training job unless its manifest is up to date. Returns (manifest, skipped)."""
    stage, run_dir = definition.name, run_dir.rstrip("/")
    log = get_logger(run_id=spec.name, stage=stage)
    existing = read_manifest(run_dir, stage)
    if existing is not None and not force and is_up_to_date(definition, existing, spec_uri, run_dir):
        log.info("stage_skipped", reason="outputs match inputs", manifest=join(run_dir, stage, MANIFEST_FILE))
        return existing, True
    if existing is not None:
        if force:
            _discard_previous_attempt(run_dir, stage)
        else:
            Location(join(run_dir, stage, MANIFEST_FILE)).delete_tree()

    client = sagemaker_client(settings.region)
    job_name = training_job_name(settings.name_prefix, run_name_of(run_dir), stage)
    request = training_job_request(stage, spec, spec_uri, run_dir, settings, job_name)
    inputs = job_inputs(request, spec_uri)
    running = _running_job(client, run_dir, stage, inputs)
    if running is not None:
        job_name, arn = running
        log.info("sagemaker_job_reattached", job_name=job_name, job_arn=arn, log_group=LOG_GROUP)
    else:
        try:
            arn = client.create_training_job(**request)["TrainingJobArn"]
        except Exception as exc:  # noqa: BLE001 - every boto error becomes one message
            raise _aws_error(exc, f"SageMaker {stage} job {job_name}") from None
        record = {"job_name": job_name, "job_arn": arn, "inputs": inputs}
        Location(join(run_dir, stage, JOB_RECORD_FILE)).write_text(json.dumps(record, indent=2))
        log.info(
            "sagemaker_job_started",
            job_name=job_name,
            job_arn=arn,
            instance_type=request["ResourceConfig"]["InstanceType"],
            log_group=LOG_GROUP,
        )
    try:
        description = wait_for_job(client, job_name, stage, run_dir, max_wait_seconds(spec))
    except KeyboardInterrupt:
        log.warning(
            "sagemaker_job_still_running",
            job_name=job_name,
            hint="the job keeps running (and billing); run the same command again to wait for it, or stop it: "
            f"aws sagemaker stop-training-job --training-job-name {job_name}",
        )
        raise
    log.info(
        "sagemaker_job_completed", job_name=job_name, job_arn=arn, seconds=description.get("TrainingTimeInSeconds")
    )
    return _manifest_written_by(definition, job_name, spec_uri, run_dir), False


def job_inputs(request: dict[str, Any], spec_uri: str) -> str:
    """SHA-256 of what a job computes from: its request (but its name) and the spec file it reads."""
    stable = {key: value for key, value in request.items() if key != "TrainingJobName"}
    digest = hashlib.sha256(json.dumps(stable, sort_keys=True).encode())
    digest.update(Location(spec_uri).read_bytes())
    return digest.hexdigest()


def _running_job(client: Any, run_dir: str, stage: str, inputs: str) -> tuple[str, str] | None:
    """(name, ARN) of the job an interrupted ``osft run`` started for these inputs and that still runs.

    Without this a re-run after Ctrl-C would start a second job beside the first, both billing and
    writing the same run folder. A job still running for other inputs (the spec changed) is refused.
    """
    location = Location(join(run_dir, stage, JOB_RECORD_FILE))
    if not location.exists():
        return None
    try:
        record = json.loads(location.read_text())
        name, arn, recorded_inputs = record["job_name"], record["job_arn"], record["inputs"]
    except (ValueError, KeyError, TypeError):
        return None  # not ours to trust: a new job is started
    try:
        status = client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
    except Exception as exc:  # noqa: BLE001 - every boto error becomes one message
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code == "ValidationException":  # no such job (deleted, another account): start a new one
            return None
        raise _aws_error(exc, f"SageMaker {stage} job {name}") from None
    if status not in RUNNING_STATES:
        return None
    if recorded_inputs != inputs:
        raise OsftError(
            f"SageMaker {stage} job {name} from an earlier run is still {status}, for other inputs than this run's",
            hint=f"wait for it or stop it (aws sagemaker stop-training-job --training-job-name {name}), then run "
            "again; two jobs would write the same run folder",
        )
    return name, arn


def _manifest_written_by(definition: StageDefinition, job_name: str, spec_uri: str, run_dir: str) -> StageManifest:
    stage = definition.name
    manifest = read_manifest(run_dir, stage)
    if manifest is None:
        raise StorageError(
            f"SageMaker {stage} job {job_name} completed but wrote no {join(run_dir, stage, MANIFEST_FILE)}",
            hint=logs_hint(job_name, run_dir, stage),
        )
    if not is_up_to_date(definition, manifest, spec_uri, run_dir):
        get_logger(run_id=manifest.run_id, stage=stage).warning(
            "sagemaker_manifest_differs",
            job_name=job_name,
            hint=f"the image in ${TRAINER_IMAGE_ENV} runs another osft version than this one, so the next run "
            "starts the job again; push images built from this checkout (make push-images)",
        )
    return manifest


__all__ = [
    "JOB_STAGES",
    "JobSettings",
    "check_can_run_jobs",
    "job_spec_uri",
    "run_stage_as_job",
    "stages_on_sagemaker",
    "training_job_name",
    "training_job_request",
]
