"""Executions of the state machine, walked offline by scripts/infra_asl_simulate.py.

Each test runs the checked-in definition's real JSONata (jsonata-python) on a run spec and reads
which states ran, what the tasks were called with and how the execution ended.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.infra.conftest import ASL_FILE, REPO, TERRAFORM_DIR, Tools

BUCKET = "osft-runs-bucket"
RENDER = {
    "bucket": BUCKET,
    "cluster_arn": "arn:aws:ecs:us-east-1:123456789012:cluster/osft",
    "extract_task_definition_arn": "arn:aws:ecs:us-east-1:123456789012:task-definition/osft-extract",
    "estimate_task_definition_arn": "arn:aws:ecs:us-east-1:123456789012:task-definition/osft-estimate",
    "querygen_task_definition_arn": "arn:aws:ecs:us-east-1:123456789012:task-definition/osft-querygen",
    "register_task_definition_arn": "arn:aws:ecs:us-east-1:123456789012:task-definition/osft-register",
    "subnet_ids": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "security_group_ids": "sg-0123456789abcdef0",
    "assign_public_ip": "DISABLED",
    "trainer_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/osft/trainer:abc123",
    "sagemaker_role_arn": "arn:aws:iam::123456789012:role/osft-sagemaker",
    "kms_key_arn": "",
    "name_prefix": "osft",
}
ACCEPTED = {"accepted": True, "metric": "ndcg@10", "base": 0.41, "tuned": 0.52}
REJECTED = {"accepted": False, "metric": "ndcg@10", "base": 0.41, "tuned": 0.40}
TRAINING_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def example_spec() -> dict[str, Any]:
    return json.loads((TERRAFORM_DIR / "examples" / "run-spec.json").read_text())


def minimal_spec() -> dict[str, Any]:
    return {"name": "tiny", "source": {"type": "s3", "uri": "s3://corpus-bucket/docs.jsonl"}}


def execute(
    tools: Tools,
    spec: Any,
    *,
    name: str = "run-1",
    gate: dict | None = None,
    register_stats: dict | None = None,
    **extra: Any,
) -> dict:
    objects = {f"runs/{name}/evaluate/gate.json": gate or ACCEPTED}
    stats = {"model_id": "abcModel1", "endpoint_name": "osft-docs", "deployed_model": "tuned", **(register_stats or {})}
    objects[f"runs/{name}/register/manifest.json"] = {"stats": stats}
    scenario = {
        "definition_file": str(ASL_FILE),
        "render": RENDER,
        "input": spec,
        "execution_name": name,
        "objects": objects,
        **extra,
    }
    result = subprocess.run(
        [str(tools.lint_python), str(REPO / "scripts" / "infra_asl_simulate.py")],
        input=json.dumps(scenario),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def call(trace: dict, state: str) -> dict:
    return next(c["arguments"] for c in trace["calls"] if c["state"] == state)


def test_accepted_model_is_registered_and_its_model_id_returned(tools: Tools) -> None:
    trace = execute(tools, example_spec(), name="docs-1")
    assert trace["path"][-4:] == ["Gate", "Register", "ReadRegistration", "Done"]
    assert trace["end"] == {
        "type": "Succeed",
        "output": {
            "run_dir": f"s3://{BUCKET}/runs/docs-1",
            "model_id": "abcModel1",
            "endpoint_name": "osft-docs",
            "deployed_model": "tuned",
            **ACCEPTED,
        },
    }


def test_execution_input_becomes_the_spec_every_stage_reads(tools: Tools) -> None:
    spec = example_spec()
    trace = execute(tools, spec, name="docs-1")
    assert json.loads(trace["objects"]["runs/docs-1/spec.json"]) == spec
    expected = ["run", "--spec", f"s3://{BUCKET}/runs/docs-1/spec.json", "--run-dir", f"s3://{BUCKET}/runs/docs-1"]
    for state in ("Extract", "Querygen", "Register"):
        assert call(trace, state)["Overrides"]["ContainerOverrides"][0]["Command"] == expected
    for state, stage in (("Train", "train"), ("Evaluate", "evaluate")):
        job = call(trace, state)
        assert job["AlgorithmSpecification"]["ContainerEntrypoint"] == ["train"], state
        assert job["HyperParameters"] == {"spec": expected[2], "run_dir": expected[4], "stage": stage}, state
    assert call(trace, "Extract")["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == [
        "subnet-0123456789abcdef0",
        "subnet-0fedcba9876543210",
    ]


def test_training_job_follows_the_spec_sagemaker_section_with_spot(tools: Tools) -> None:
    train = call(execute(tools, example_spec()), "Train")
    assert train["ResourceConfig"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}
    assert train["EnableManagedSpotTraining"] is True
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 14400, "MaxWaitTimeInSeconds": 28800}
    assert train["AlgorithmSpecification"]["TrainingImage"] == RENDER["trainer_image"]
    checkpoints = train["CheckpointConfig"]
    assert checkpoints["S3Uri"].endswith("/train/_checkpoints")
    assert train["Environment"]["OSFT_CHECKPOINT_DIR"] == checkpoints["LocalPath"]


def test_spec_without_training_section_gets_the_schema_defaults(tools: Tools) -> None:
    trace = execute(tools, minimal_spec())
    train = call(trace, "Train")
    assert train["ResourceConfig"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}
    assert train["EnableManagedSpotTraining"] is False
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert "KmsKeyId" not in train["OutputDataConfig"]


def test_spec_without_deploy_stops_after_the_gate_with_no_model(tools: Tools) -> None:
    trace = execute(tools, minimal_spec(), gate=REJECTED)
    assert "Register" not in trace["path"]
    assert trace["end"]["type"] == "Succeed"
    assert trace["end"]["output"]["model_id"] is None and trace["end"]["output"]["accepted"] is False


def test_rejected_model_is_not_deployed_and_the_execution_fails_saying_why(tools: Tools) -> None:
    trace = execute(tools, example_spec(), gate=REJECTED)
    assert "Register" not in trace["path"]
    assert trace["end"]["type"] == "Fail" and trace["end"]["error"] == "osft.GateRejected"
    assert "ndcg@10" in trace["end"]["cause"] and "0.4" in trace["end"]["cause"]


def test_require_gate_false_deploys_a_rejected_model(tools: Tools) -> None:
    spec = example_spec()
    spec["deploy"]["require_gate"] = False
    trace = execute(tools, spec, gate=REJECTED)
    assert "Register" in trace["path"] and trace["end"]["type"] == "Succeed"


def test_when_rejected_base_registers_the_base_model_in_place_of_a_rejected_one(tools: Tools) -> None:
    spec = example_spec()
    spec["deploy"]["when_rejected"] = "base"
    trace = execute(tools, spec, gate=REJECTED, register_stats={"deployed_model": "base"})
    assert "Register" in trace["path"] and trace["end"]["type"] == "Succeed"
    assert trace["end"]["output"]["deployed_model"] == "base" and trace["end"]["output"]["accepted"] is False


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "local-run", "source": {"type": "local", "path": "data/docs.jsonl"}},
        {"name": "Bad_Name", "source": {"type": "s3", "uri": "s3://b/docs"}},
        {"name": "-".join(["ab"] * 17), "source": {"type": "s3", "uri": "s3://b/docs"}},
        {"name": "pairs-run", "source": {"type": "pairs", "path": "pairs.jsonl"}},
        {"source": {"type": "s3", "uri": "s3://b/docs"}},
        "not a spec",
    ],
    ids=["local-source", "bad-name", "name-over-48", "local-pairs", "no-name", "not-an-object"],
)
def test_input_a_cloud_run_cannot_use_fails_before_any_compute(tools: Tools, spec: Any) -> None:
    trace = execute(tools, spec)
    assert trace["path"] == ["Prepare", "ValidateInput", "InvalidInput", "RecordFailure", "Failed"]
    assert trace["end"]["error"] == "osft.InvalidInput"
    recorded = json.loads(trace["objects"]["runs/run-1/error.json"])
    assert recorded["state"] == "ValidateInput" and "osft validate" in recorded["cause"]


def test_failed_stage_is_recorded_in_the_run_folder(tools: Tools) -> None:
    failure = {"Error": "States.TaskFailed", "Cause": "querygen exited with code 3"}
    trace = execute(tools, example_spec(), fail={"Querygen": failure})
    assert trace["path"][-3:] == ["Querygen", "RecordFailure", "Failed"]
    assert "Train" not in trace["path"]
    recorded = json.loads(trace["objects"]["runs/run-1/error.json"])
    assert recorded == {
        "execution": "arn:aws:states:us-east-1:123456789012:execution:sm:run-1",
        "state": "Querygen",
        "error": "States.TaskFailed",
        "cause": "querygen exited with code 3",
    }
    assert trace["end"] == {"type": "Fail", "error": "States.TaskFailed", "cause": "querygen exited with code 3"}


def test_missing_gate_file_fails_the_run_instead_of_deploying(tools: Tools) -> None:
    trace = execute(tools, example_spec(), name="run-1", objects={})
    assert trace["path"][-3:] == ["ReadGate", "RecordFailure", "Failed"]
    assert trace["end"]["error"] == "S3.NoSuchKeyException"


@pytest.mark.parametrize(
    ("name", "prefix"), [("docs-1", "osft"), ("Run_2026.01.02", "osft"), ("x" * 80, "osft"), ("y" * 80, "p" * 20)]
)
def test_training_job_names_are_valid_for_any_execution_name_and_prefix(tools: Tools, name: str, prefix: str) -> None:
    trace = execute(tools, minimal_spec(), name=name, render={**RENDER, "name_prefix": prefix})
    for state in ("Train", "Evaluate"):
        job = call(trace, state)["TrainingJobName"]
        assert TRAINING_JOB_NAME.match(job) and len(job) <= 63, job
    assert call(trace, "Train")["TrainingJobName"] != call(trace, "Evaluate")["TrainingJobName"]


def test_tag_values_hold_only_characters_ecs_and_sagemaker_accept_whatever_the_execution_name(tools: Tools) -> None:
    allowed = re.compile(r"^[A-Za-z0-9 _.:/=+@-]*$")  # ECS and SageMaker tag values (ASCII part)
    trace = execute(tools, minimal_spec(), name="docs(2)!'x'")
    for state in ("Extract", "Querygen", "Train", "Evaluate"):
        values = [tag["Value"] for tag in call(trace, state)["Tags"]]
        assert values and all(allowed.match(value) for value in values), (state, values)
    assert call(trace, "Train")["HyperParameters"]["run_dir"] == f"s3://{BUCKET}/runs/docs(2)!'x'"
