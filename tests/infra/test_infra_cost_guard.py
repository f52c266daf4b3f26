"""The cost guard on AWS: with max_cost_usd set, the state machine runs `osft estimate --enforce`
after extract and fails the execution before querygen when the estimate is over the limit.

Executions are walked offline by scripts/infra_asl_simulate.py, as in test_infra_pipeline_flow.py.
An ECS task that exits non-zero reaches Step Functions as States.TaskFailed whose Cause is the
stopped task (its containers and their exit codes) as JSON; these tests build that Cause.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from osft.common.cli import main
from osft.common.errors import QuotaError, SpecError
from tests.conftest import make_tiny_spec
from tests.infra.conftest import Tools
from tests.infra.test_infra_pipeline_flow import BUCKET, RENDER, call, example_spec, execute

LIMIT = 5.0
GUARD = ["Extract", "CostLimitSet", "EstimateCost"]


def limited_spec(limit: float | None = LIMIT) -> dict[str, Any]:
    return {**example_spec(), "max_cost_usd": limit}


def unlimited_spec() -> dict[str, Any]:
    return {k: v for k, v in example_spec().items() if k != "max_cost_usd"}


def stopped_task(exit_code: int, key: str = "ExitCode") -> dict[str, str]:
    """The States.TaskFailed error of runTask.sync for a task whose one container exited with ``exit_code``."""
    task = {
        "TaskArn": "arn:aws:ecs:us-east-1:123456789012:task/osft/0123456789abcdef",
        "LastStatus": "STOPPED",
        "StopCode": "EssentialContainerExited",
        "StoppedReason": "Essential container in task exited",
        "Containers": [{"Name": "estimate", "LastStatus": "STOPPED", key: exit_code}],
    }
    return {"Error": "States.TaskFailed", "Cause": json.dumps(task)}


@pytest.mark.parametrize("key", ["ExitCode", "exitCode"])
def test_estimate_over_the_limit_fails_the_execution_before_querygen(tools: Tools, key: str) -> None:
    trace = execute(tools, limited_spec(), fail={"EstimateCost": stopped_task(QuotaError.exit_code, key)})

    assert trace["path"][-6:] == [*GUARD[1:], "EstimateFailed", "CostLimitExceeded", "RecordFailure", "Failed"]
    assert "Querygen" not in trace["path"] and "Train" not in trace["path"]
    assert trace["end"]["type"] == "Fail" and trace["end"]["error"] == "osft.CostLimitExceeded"
    assert "max_cost_usd" in trace["end"]["cause"] and "$5" in trace["end"]["cause"]
    assert f"s3://{BUCKET}/runs/run-1/estimate.json" in trace["end"]["cause"]
    assert "/osft/ecs/extract" in trace["end"]["cause"], "the cause names the log group with the estimate's reason"
    recorded = json.loads(trace["objects"]["runs/run-1/error.json"])
    assert recorded["state"] == "EstimateCost" and recorded["error"] == "osft.CostLimitExceeded"


def test_real_over_limit_exit_code_is_the_one_the_state_machine_recognises(
    tools: Tools, tiny_corpus: Path, write_spec, tmp_path: Path
) -> None:
    bedrock = {"provider": "bedrock", "model_id": "us.anthropic.claude-haiku-4-5-20251001-v1:0", "queries_per_doc": 3}
    spec = write_spec(make_tiny_spec(tiny_corpus, querygen=bedrock, max_cost_usd=0.0001))
    args = ["estimate", "--spec", str(spec), "--run-dir", str(tmp_path / "run"), "--enforce", "--sagemaker"]
    exit_code = CliRunner().invoke(main, args).exit_code
    assert exit_code != 0

    trace = execute(tools, limited_spec(), fail={"EstimateCost": stopped_task(exit_code)})

    assert trace["end"]["error"] == "osft.CostLimitExceeded", f"`osft {' '.join(args)}` exited {exit_code}"


@pytest.mark.parametrize("exit_code", [SpecError.exit_code, 70, 17, 137])
def test_estimate_failing_for_another_reason_is_recorded_as_a_task_failure(tools: Tools, exit_code: int) -> None:
    failure = stopped_task(exit_code)
    trace = execute(tools, limited_spec(), fail={"EstimateCost": failure})

    assert trace["path"][-4:] == ["EstimateCost", "EstimateFailed", "RecordFailure", "Failed"]
    assert trace["end"] == {"type": "Fail", "error": "States.TaskFailed", "cause": failure["Cause"]}
    assert json.loads(trace["objects"]["runs/run-1/error.json"])["state"] == "EstimateCost"


def test_ecs_refusing_to_start_the_estimate_is_not_reported_as_over_the_limit(tools: Tools) -> None:
    failure = {"Error": "ECS.AccessDeniedException", "Cause": "not authorized to perform ecs:RunTask"}
    trace = execute(tools, limited_spec(), fail={"EstimateCost": failure})

    assert "CostLimitExceeded" not in trace["path"]
    assert trace["end"]["error"] == "ECS.AccessDeniedException"


def test_estimate_under_the_limit_continues_to_querygen(tools: Tools) -> None:
    trace = execute(tools, limited_spec(), name="docs-1")

    assert trace["path"][trace["path"].index("Extract") :][:4] == [*GUARD, "Querygen"]
    assert trace["end"]["type"] == "Succeed"
    guard = call(trace, "EstimateCost")
    assert guard["TaskDefinition"] == RENDER["estimate_task_definition_arn"]
    assert guard["Overrides"]["ContainerOverrides"] == [
        {
            "Name": "estimate",
            "Command": [
                "estimate",
                "--spec",
                f"s3://{BUCKET}/runs/docs-1/spec.json",
                "--run-dir",
                f"s3://{BUCKET}/runs/docs-1",
                "--enforce",
                "--sagemaker",
            ],
        }
    ]
    assert guard["NetworkConfiguration"] == call(trace, "Extract")["NetworkConfiguration"]


@pytest.mark.parametrize("spec", [unlimited_spec(), limited_spec(None)], ids=["no-limit", "limit-null"])
def test_spec_without_a_limit_goes_from_extract_straight_to_querygen(tools: Tools, spec: dict[str, Any]) -> None:
    trace = execute(tools, spec)

    assert trace["path"][trace["path"].index("Extract") :][:3] == ["Extract", "CostLimitSet", "Querygen"]
    assert "EstimateCost" not in trace["path"]
