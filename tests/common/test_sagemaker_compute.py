"""``training.compute: "sagemaker"``: `osft run` runs train and evaluate as SageMaker training jobs.

boto3 talks to moto. moto records a training job but runs no container, so ``TrainerContainer``
stands in for it through hooks on the real boto3 clients: when CreateTrainingJob succeeds it runs
the requested stage the way the trainer image's ``train`` entrypoint does (``run_stage`` with the
job's hyperparameters, outputs and manifest to the S3 run folder), with a tiny stage body instead
of real training. A failed job is a DescribeTrainingJob answered with status Failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from click.testing import CliRunner
from moto import mock_aws

from osft.common.cli import main
from osft.common.errors import OsftError
from osft.common.manifests import EvaluateStats, TrainStats
from osft.common.registry import load_stage
from osft.common.runner import run_pipeline
from osft.common.sagemaker_jobs import ROLE_ENV, TRAINER_IMAGE_ENV
from osft.common.stage import StageContext, StageResult, run_stage

REGION = "us-east-1"
BUCKET = "osft-runs"
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/osft-trainer:test"
ROLE = "arn:aws:iam::123456789012:role/osft-sagemaker"
LONG_RUN_NAME = "support-articles-bge-small-hard-negatives-nightly-2025-06-30-1200"
ASL = Path(__file__).resolve().parents[2] / "terraform" / "statemachine" / "pipeline.asl.json"
FAILURE_REASON = "AlgorithmError: CUDA out of memory. Tried to allocate 2.00 GiB"


def fake_train(ctx: StageContext) -> StageResult:
    ctx.output_path("model/config.json").write_text('{"model_type": "bert"}')
    return StageResult(
        stats=TrainStats(base_model=ctx.spec.model.base, model_type="dense"), outputs=["model"], counts={"steps": 1}
    )


def fake_evaluate(ctx: StageContext) -> StageResult:
    ctx.output_path("gate.json").write_text('{"accepted": true}')
    stats = EvaluateStats(
        decided_by="synthetic-heldout",
        queries=5,
        corpus_size=40,
        metric="ndcg@10",
        base={"ndcg@10": 0.5},
        tuned={"ndcg@10": 0.6},
        gain=0.1,
        min_gain=0.0,
        accepted=True,
        reason="tuned beats base",
    )
    return StageResult(stats=stats, outputs=["gate.json"], counts={"queries": 5, "accepted": 1})


FAKE_BODIES = {"train": fake_train, "evaluate": fake_evaluate}


@dataclass
class TrainerContainer:
    """What the trainer image does when SageMaker starts it; ``failure`` makes every job end Failed instead.

    ``hold`` keeps a new job InProgress until the next DescribeTrainingJob that is not interrupted
    (``interrupt`` raises KeyboardInterrupt there once, as Ctrl-C while ``osft run`` waits).
    """

    failure: str | None = None
    hold: bool = False
    interrupt: bool = False
    held: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def attach(self, session: boto3.Session) -> None:
        events = session.events
        events.register("before-parameter-build.sagemaker.CreateTrainingJob", self.record)
        events.register("after-call.sagemaker.CreateTrainingJob", self.run_job)
        events.register("before-call.sagemaker.DescribeTrainingJob", self.describe)

    def record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(json.loads(json.dumps(params)))

    def run_job(self, http_response: Any, **_: Any) -> None:
        if http_response.status_code != 200 or self.failure:
            return
        if self.hold:
            self.held.append(self.requests[-1])
            return
        self.run(self.requests[-1])

    @staticmethod
    def run(request: dict[str, Any]) -> None:
        hyper = request["HyperParameters"]
        definition = replace(load_stage(hyper["stage"]), run=FAKE_BODIES[hyper["stage"]])
        run_stage(definition, hyper["spec"], hyper["run_dir"])

    def describe(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        """Answers DescribeTrainingJob itself (as botocore's Stubber does) when the job is held or to fail."""
        if self.interrupt:
            self.interrupt = False
            raise KeyboardInterrupt
        if self.held:  # still running at this call; it finishes right after
            request = self.held.pop()
            self.hold = False
            self.run(request)
            parsed = {"TrainingJobName": request["TrainingJobName"], "TrainingJobStatus": "InProgress"}
            return AWSResponse("", 200, {}, None), parsed
        if not self.failure:
            return None  # moto answers: Completed
        parsed = {
            "TrainingJobName": self.jobs()[-1],
            "TrainingJobStatus": "Failed",
            "SecondaryStatus": "Failed",
            "FailureReason": self.failure,
        }
        return AWSResponse("", 200, {}, None), parsed

    def jobs(self) -> list[str]:
        return [r["TrainingJobName"] for r in self.requests]


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> Iterator[TrainerContainer]:
    """moto for AWS with the run bucket, the stack's environment, and the stand-in container on boto3's session."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        TRAINER_IMAGE_ENV: IMAGE,
        ROLE_ENV: ROLE,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "OSFT_S3_ENDPOINT_URL", "OSFT_NAME_PREFIX", "OSFT_KMS_KEY_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # restored afterwards: hooks stay in this test
    with mock_aws():
        boto3.setup_default_session(region_name=REGION)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        stand_in = TrainerContainer()
        stand_in.attach(boto3.DEFAULT_SESSION)
        yield stand_in


@pytest.fixture
def sagemaker_spec(write_spec, tiny_spec, tiny_corpus) -> Path:
    sagemaker = {"instance_type": "ml.g5.2xlarge", "instance_count": 2, "use_spot": True, "max_run_seconds": 3600}
    data = tiny_spec(tiny_corpus)
    data["training"] |= {"compute": "sagemaker", "sagemaker": sagemaker}
    return write_spec(data)


def run_dir(name: str = LONG_RUN_NAME) -> str:
    return f"s3://{BUCKET}/runs/{name}"


def bucket_keys() -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def asl_arguments(state: str) -> dict[str, Any]:
    return json.loads(ASL.read_text())["States"][state]["Arguments"]


def test_train_and_evaluate_run_as_jobs_with_the_state_machines_request(container, sagemaker_spec):
    result = run_pipeline(str(sagemaker_spec), run_dir=run_dir())

    assert [(o.stage, o.skipped) for o in result.outcomes] == [
        ("extract", False),
        ("querygen", False),
        ("train", False),
        ("evaluate", False),
    ]
    assert result.manifest("train").outputs[0].path == "train/model/config.json"
    assert result.manifest("evaluate").stats.accepted
    train, evaluate = container.requests
    for request, state, stage, suffix in (
        (train, "Train", "train", "train"),
        (evaluate, "Evaluate", "evaluate", "eval"),
    ):
        asl = asl_arguments(state)
        assert set(request) == set(asl)
        assert request["AlgorithmSpecification"] == {**asl["AlgorithmSpecification"], "TrainingImage": IMAGE}
        assert request["RoleArn"] == ROLE
        assert request["HyperParameters"] == {"spec": f"{run_dir()}/spec.json", "run_dir": run_dir(), "stage": stage}
        assert request["OutputDataConfig"] == {"S3OutputPath": f"{run_dir()}/{stage}/sagemaker-output"}
        assert request["Environment"] == asl["Environment"]
        assert request["Tags"] == [{"Key": "osft:run", "Value": LONG_RUN_NAME}, {"Key": "osft:stage", "Value": stage}]
        assert request["EnableManagedSpotTraining"] is True
        assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
        assert len(request["TrainingJobName"]) <= 63
        assert re.fullmatch(rf"osft-support-articles-[a-z0-9-]+-{suffix}-[0-9a-f]{{8}}", request["TrainingJobName"])
    assert train["CheckpointConfig"] == {"S3Uri": f"{run_dir()}/train/_checkpoints", "LocalPath": "/opt/ml/checkpoints"}
    assert train["ResourceConfig"] == {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50}
    assert evaluate["ResourceConfig"]["InstanceCount"] == 1
    jobs = boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert sorted(j["TrainingJobName"] for j in jobs) == sorted(container.jobs())
    assert f"runs/{LONG_RUN_NAME}/spec.json" in bucket_keys()


def test_a_rerun_with_the_manifests_present_starts_no_job(container, sagemaker_spec):
    run_pipeline(str(sagemaker_spec), run_dir=run_dir("rerun"))
    assert len(container.requests) == 2

    again = run_pipeline(str(sagemaker_spec), run_dir=run_dir("rerun"))
    assert all(o.skipped for o in again.outcomes)
    assert len(container.requests) == 2

    forced = run_pipeline(str(sagemaker_spec), run_dir=run_dir("rerun"), force=("train",))
    assert [r["HyperParameters"]["stage"] for r in container.requests[2:]] == ["train"]
    assert {o.stage: o.skipped for o in forced.outcomes}["evaluate"]  # the same model: evaluate stays done


def test_a_failed_job_ends_osft_run_with_its_reason_and_no_traceback(container, sagemaker_spec):
    container.failure = FAILURE_REASON
    result = CliRunner().invoke(main, ["run", str(sagemaker_spec), "--run-dir", run_dir("failing")])

    assert result.exit_code != 0
    job = container.jobs()[0]
    assert f"error: SageMaker train job {job} ended Failed: {FAILURE_REASON}" in result.output
    assert f"/aws/sagemaker/TrainingJobs --log-stream-name-prefix {job}" in result.output
    assert "Traceback" not in result.output
    assert len(container.requests) == 1  # evaluate never started
    assert "runs/failing/train/manifest.json" not in bucket_keys()


def test_a_local_run_folder_is_refused_before_anything_starts(container, sagemaker_spec, tmp_path):
    local = tmp_path / "runs" / "local"
    with pytest.raises(OsftError, match=r"run folder .* is local") as caught:
        run_pipeline(str(sagemaker_spec), run_dir=str(local))

    assert "--run-dir s3://" in caught.value.render()
    assert not local.exists() and container.requests == []


def test_a_judged_set_on_this_machine_is_refused_before_anything_starts(container, sagemaker_spec, tmp_path):
    data = json.loads(sagemaker_spec.read_text())
    data["evaluation"]["judged"] = {"path": str(tmp_path / "judged")}
    sagemaker_spec.write_text(json.dumps(data))

    with pytest.raises(OsftError, match=r"evaluation\.judged\.path name\(s\) files on this machine"):
        run_pipeline(str(sagemaker_spec), run_dir=run_dir())
    assert bucket_keys() == [] and container.requests == []


@pytest.mark.parametrize("missing", [TRAINER_IMAGE_ENV, ROLE_ENV])
def test_a_missing_image_or_role_names_the_variable_before_anything_starts(
    container, sagemaker_spec, monkeypatch, missing
):
    monkeypatch.delenv(missing)
    with pytest.raises(OsftError, match=rf"\${missing} is not set") as caught:
        run_pipeline(str(sagemaker_spec), run_dir=run_dir())

    assert f"export {missing}=" in caught.value.render()
    assert bucket_keys() == [] and container.requests == []


def test_a_run_that_stops_before_train_needs_no_sagemaker_settings(container, sagemaker_spec, monkeypatch):
    monkeypatch.delenv(TRAINER_IMAGE_ENV)
    result = run_pipeline(str(sagemaker_spec), run_dir=run_dir(), until="querygen")
    assert [o.stage for o in result.outcomes] == ["extract", "querygen"] and container.requests == []


def test_a_rerun_after_ctrl_c_waits_for_the_job_still_running_instead_of_starting_another(container, sagemaker_spec):
    container.hold = container.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(str(sagemaker_spec), run_dir=run_dir("interrupted"))
    assert len(container.requests) == 1 and container.held

    result = run_pipeline(str(sagemaker_spec), run_dir=run_dir("interrupted"))

    assert [r["HyperParameters"]["stage"] for r in container.requests] == ["train", "evaluate"]
    assert result.manifest("train") is not None and result.manifest("evaluate").stats.accepted


def test_a_job_still_running_for_another_spec_is_refused_not_joined(container, sagemaker_spec):
    container.hold = container.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(str(sagemaker_spec), run_dir=run_dir("changed"))
    data = json.loads(sagemaker_spec.read_text())
    data["training"]["seed"] = 99
    sagemaker_spec.write_text(json.dumps(data))

    with pytest.raises(OsftError, match=r"still InProgress, for other inputs") as caught:
        run_pipeline(str(sagemaker_spec), run_dir=run_dir("changed"))

    assert "stop-training-job --training-job-name " + container.jobs()[0] in caught.value.render()
    assert len(container.requests) == 1
