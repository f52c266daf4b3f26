"""What the Step Functions service integrations need from the definition and the IAM roles.

Facts from the Step Functions developer guide, checked here because neither statelint nor the moto
apply can see them (moto evaluates no IAM and runs no ECS task or SageMaker job):

- ecs:runTask.sync fails the task with ``AmazonECS.Unknown`` when RunTask answers HTTP 200 with a
  non-empty ``Failures`` list (e.g. Fargate capacity unavailable), not with an ``ECS.*`` error
  ("Run Amazon ECS or Fargate tasks with Step Functions", key features).
- Step Functions sets ``startedBy`` of the tasks it runs itself ("AWS Step Functions"); the
  definition must not pass its own.
- sagemaker:createTrainingJob.sync needs sagemaker:CreateTrainingJob, DescribeTrainingJob,
  StopTrainingJob, ListTags, iam:PassRole (PassedToService sagemaker) and the managed rule
  StepFunctionsGetEventsForSageMakerTrainingJobsRule ("IAM policies for Amazon SageMaker AI",
  CreateTrainingJob, Synchronous); it also tags the job, hence AddTags.
- A training job given OutputDataConfig.KmsKeyId needs kms:Encrypt on that key in its execution
  role (SageMaker API reference, OutputDataConfig.KmsKeyId).
"""

from __future__ import annotations

import re

from tests.infra.conftest import TERRAFORM_DIR
from tests.infra.test_infra_state_machine import ECS_RESOURCE, TRAINING_RESOURCE, tasks


def policy_document(name: str) -> str:
    """The body of ``data "aws_iam_policy_document" "<name>"`` in terraform/iam.tf (braces matched)."""
    text = (TERRAFORM_DIR / "iam.tf").read_text()
    start = text.index(f'data "aws_iam_policy_document" "{name}" {{')
    depth = 0
    for end in range(text.index("{", start), len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return text[start : end + 1]
    raise AssertionError(f"unbalanced braces in policy document {name}")


def actions(document: str) -> set[str]:
    return {
        a
        for block in re.findall(r"actions\s*=\s*\[(.*?)\]", document, re.DOTALL)
        for a in re.findall(r'"([^"]+)"', block)
    }


def test_ecs_tasks_do_not_set_started_by_which_step_functions_sets_itself(asl: dict) -> None:
    for name, state in tasks(asl, ECS_RESOURCE).items():
        assert "StartedBy" not in state["Arguments"], name


def test_ecs_tasks_retry_run_task_failures_such_as_no_fargate_capacity(asl: dict) -> None:
    for name, state in tasks(asl, ECS_RESOURCE).items():
        retried = {e for retrier in state["Retry"] for e in retrier["ErrorEquals"]}
        assert "AmazonECS.Unknown" in retried, f"{name}: RunTask failures (non-empty Failures) are not retried"


def test_step_functions_role_has_every_permission_the_sync_integrations_need(asl: dict) -> None:
    assert tasks(asl, TRAINING_RESOURCE) and tasks(asl, ECS_RESOURCE)
    granted = actions(policy_document("step_functions"))
    needed = {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:AddTags",
        "sagemaker:ListTags",
        "ecs:RunTask",
        "ecs:StopTask",
        "ecs:DescribeTasks",
        "ecs:TagResource",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
        "iam:PassRole",
    }
    assert needed <= granted, f"missing from the Step Functions role: {sorted(needed - granted)}"
    document = policy_document("step_functions")
    for rule in ("StepFunctionsGetEventsForECSTaskRule", "StepFunctionsGetEventsForSageMakerTrainingJobsRule"):
        assert f"rule/{rule}" in document, rule


def test_training_jobs_with_a_kms_key_may_encrypt_their_output_with_it(asl: dict) -> None:
    for name, state in tasks(asl, TRAINING_RESOURCE).items():
        assert "KmsKeyId" in state["Arguments"]["OutputDataConfig"], name
    document = policy_document("sagemaker")
    kms = re.search(r"for_each\s*=\s*local\.kms_key_ids.*?actions\s*=\s*\[([^\]]*)\]", document, re.DOTALL)
    assert kms and '"kms:Encrypt"' in kms.group(1), "the SageMaker role lacks kms:Encrypt on the run KMS key"
