"""The state machine is valid ASL and keeps its contract with the stage CLIs and the run spec.

Contract: every ECS and SageMaker task runs a console script the named image really installs,
with arguments that script's click command accepts; every run-spec path the definition reads
exists in the run spec's JSON Schema (`osft schema`); the defaults it applies are the schema's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
import pytest

from osft.common.manifests.register import RegisterManifest
from osft.common.spec import json_schema
from osft.common.spec.training import SageMakerTraining
from tests.infra.conftest import ASL_FILE, REPO, TERRAFORM_DIR, Tools

JSONATA = re.compile(r"^\{%(.*)%\}$", re.DOTALL)
ECS_RESOURCE = "arn:aws:states:::ecs:runTask.sync"
TRAINING_RESOURCE = "arn:aws:states:::sagemaker:createTrainingJob.sync"
GATE_FILE_KEYS = {"accepted", "metric", "base", "tuned"}  # what evaluate writes to evaluate/gate.json
PLACEHOLDER_URI = "s3://bucket/runs/example/spec.json"


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def expressions(node: Any) -> list[str]:
    return [m.group(1) for s in strings(node) if (m := JSONATA.match(s.strip()))]


def tasks(asl: dict, resource: str) -> dict[str, dict]:
    return {name: state for name, state in asl["States"].items() if state.get("Resource") == resource}


def concrete(args: list[str]) -> list[str]:
    """Replace JSONata expressions with a value of the kind they evaluate to (an S3 URI)."""
    return [PLACEHOLDER_URI if JSONATA.match(a) else a for a in args]


def image_scripts(image: str) -> dict[str, str]:
    pyproject = tomllib.loads((REPO / "images" / image / "pyproject.toml").read_text())
    return pyproject["project"]["scripts"]


def installed_scripts(image: str) -> set[str]:
    """Console scripts the image has on PATH: those of every local package (osft-common gives `osft`)
    its Dockerfile pip-installs into a virtualenv whose bin/ the image puts on PATH."""
    dockerfile = (REPO / "images" / image / "Dockerfile").read_text().replace("\\\n", " ")
    scripts: set[str] = set()
    for venv, args in re.findall(r"(\S+)/bin/pip install ([^\n&]+)", dockerfile):
        if not re.search(rf"^ENV PATH={re.escape(venv)}/bin:", dockerfile, flags=re.MULTILINE):
            continue
        for package in re.findall(r"/src/(shared|images/\w+)", args):
            pyproject = tomllib.loads((REPO / package / "pyproject.toml").read_text())
            scripts |= set(pyproject["project"].get("scripts", {}))
    return scripts


def ecs_task_entrypoints() -> dict[str, tuple[str, str]]:
    """Tasks of terraform/ecs.tf's ``local.ecs_tasks`` that set their own entry point, as
    container name -> (image, entry point); e.g. the cost guard's estimate -> (extractor, osft)."""
    block = (TERRAFORM_DIR / "ecs.tf").read_text().split("ecs_tasks = merge(", 1)[1].split("\n  )", 1)[0]
    found: dict[str, tuple[str, str]] = {}
    for name, stage, script in re.findall(
        r'(\w+)\s*=\s*\{\s*image\s*=\s*local\.ecs_stages\["(\w+)"\]\.image,.*?entry_point\s*=\s*\["(\w+)"\]', block
    ):
        found[name] = (ecs_stage_images()[stage], script)
    assert found, "no task with an entry_point parsed from local.ecs_tasks in terraform/ecs.tf (format changed?)"
    return found


def ecs_stage_images() -> dict[str, str]:
    """The ECS stages of terraform/main.tf (container name -> image), read from local.ecs_stages."""
    block = (TERRAFORM_DIR / "main.tf").read_text().split("ecs_stages = {", 1)[1].split("\n  }", 1)[0]
    return dict(re.findall(r'(\w+)\s*=\s*\{\s*image\s*=\s*"(\w+)"', block))


def load_script(name: str) -> click.Command:
    found = list(entry_points(group="console_scripts", name=name))
    if not found:
        pytest.fail(
            f"console script '{name}' is not installed, so the contract cannot be checked: "
            f"install the image packages (make install)",
            pytrace=False,
        )
    command = found[0].load()
    assert isinstance(command, click.Command), f"{name} is not a click command"
    return command


def assert_accepts(script: str, args: list[str]) -> None:
    """Parse ``script args`` with the real click command; a usage error fails the test."""
    command = load_script(script)
    try:
        ctx = command.make_context(script, list(args))
        while isinstance(command, click.Group) and ctx.protected_args + ctx.args:
            rest = [*ctx.protected_args, *ctx.args]
            sub = command.get_command(ctx, rest[0])
            assert sub is not None, f"`{script}` has no subcommand '{rest[0]}'"
            command, ctx = sub, sub.make_context(rest[0], rest[1:], parent=ctx)
    except click.UsageError as exc:
        pytest.fail(f"`{script} {' '.join(args)}` is rejected by the CLI: {exc.format_message()}", pytrace=False)
    params = {p.name for p in command.params}
    assert {"spec_uri", "run_dir"} <= params or {"spec", "run_dir"} <= params, f"{script}: no --spec/--run-dir"


def schema_has(schema: dict, node: dict, path: list[str]) -> bool:
    """Whether ``path`` can exist under ``node`` (any branch of a union counts)."""
    if "$ref" in node:
        return schema_has(schema, schema["$defs"][node["$ref"].split("/")[-1]], path)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return any(schema_has(schema, branch, path) for branch in node[key])
    if not path:
        return True
    head, rest = path[0], path[1:]
    if head in node.get("properties", {}):
        return schema_has(schema, node["properties"][head], rest)
    additional = node.get("additionalProperties")
    return isinstance(additional, dict) and schema_has(schema, additional, rest)


def spec_aliases(asl: dict) -> dict[str, str]:
    """Variables the definition assigns from the execution input: name -> spec path ('' = the whole spec)."""
    aliases: dict[str, str] = {}
    for state in asl["States"].values():
        for rule in [state, *state.get("Choices", [])]:
            for name, value in rule.get("Assign", {}).items():
                refs = re.findall(r"\$states\.input((?:\.\w+)*)", value) if isinstance(value, str) else []
                if len(refs) == 1:
                    aliases[name] = refs[0].lstrip(".")
    return aliases


def spec_reads(asl: dict) -> set[str]:
    """Every run-spec path the definition reads, through $states.input or an alias of it."""
    aliases = spec_aliases(asl)
    reads: set[str] = set()
    for expression in expressions(asl):
        for path in re.findall(r"\$states\.input((?:\.\w+)+)", expression):
            reads.add(path.lstrip("."))
        for name, base in aliases.items():
            for path in re.findall(rf"\${name}((?:\.\w+)+)", expression):
                reads.add(".".join(p for p in (base, path.lstrip(".")) if p))
    return reads


def test_statelint_accepts_the_state_machine(tools: Tools, run_tool) -> None:
    result = run_tool(tools.statelint, ASL_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_jsonata_expression_parses(tools: Tools, run_tool) -> None:
    result = run_tool(tools.lint_python, REPO / "scripts" / "infra_jsonata_syntax.py", ASL_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 with syntax errors" in result.stdout


def test_flow_is_extract_querygen_train_evaluate_gate_register(asl: dict) -> None:
    order, state = [], asl["StartAt"]
    while state:
        order.append(state)
        body = asl["States"][state]
        state = body.get("Next") or next(
            (c["Next"] for c in body.get("Choices", []) if c["Next"] not in ("InvalidInput", "NoDeploy")), None
        )
    assert [s for s in order if s in ("Extract", "Querygen", "Train", "Evaluate", "Gate", "Register")] == [
        "Extract",
        "Querygen",
        "Train",
        "Evaluate",
        "Gate",
        "Register",
    ]
    assert asl["States"][order[-1]]["Type"] == "Succeed"


def test_every_task_retries_transient_errors_and_records_failures(asl: dict) -> None:
    for name, state in asl["States"].items():
        if state["Type"] != "Task":
            continue
        retried = [e for r in state.get("Retry", []) for e in r["ErrorEquals"]]
        assert retried and "States.ALL" not in retried, f"{name}: no Retry, or one that retries every error"
        catch = state.get("Catch", [])
        assert catch and catch[0]["ErrorEquals"] == ["States.ALL"], f"{name}: no catch-all"
        handler = catch[0]["Next"]
        if asl["States"][handler]["Type"] == "Choice":  # sorts the error first, e.g. EstimateFailed
            handler = asl["States"][handler]["Default"]
        assert handler == ("Failed" if name == "RecordFailure" else "RecordFailure"), name
    record = asl["States"]["RecordFailure"]
    assert record["Resource"] == "arn:aws:states:::aws-sdk:s3:putObject"
    assert "/error.json" in record["Arguments"]["Key"]


def test_ecs_tasks_run_commands_their_image_really_has(asl: dict) -> None:
    stage_images = ecs_stage_images()
    ecs = tasks(asl, ECS_RESOURCE)
    assert set(ecs) == {"Extract", "EstimateCost", "Querygen", "Register"}
    own_entrypoints = ecs_task_entrypoints()
    for name, state in ecs.items():
        override = state["Arguments"]["Overrides"]["ContainerOverrides"][0]
        if override["Name"] in own_entrypoints:  # the task definition sets the entry point: any installed script
            image, script = own_entrypoints[override["Name"]]
            assert state["Arguments"]["TaskDefinition"] == "${" + override["Name"] + "_task_definition_arn}", name
            assert script in installed_scripts(image), f"{name}: image {image} installs no console script '{script}'"
            assert_accepts(script, concrete(override["Command"]))
            continue
        script = override["Name"]
        assert state["Arguments"]["TaskDefinition"] == "${" + script + "_task_definition_arn}", name
        image = stage_images[script]
        assert script in image_scripts(image), f"{name}: image {image} declares no console script '{script}'"
        dockerfile = (REPO / "images" / image / "Dockerfile").read_text()
        assert f'ENTRYPOINT ["{script}"]' in dockerfile, f"{name}: the {image} image's ENTRYPOINT is not {script}"
        assert override["Command"][:1] == ["run"] and "--spec" in override["Command"], name
        assert_accepts(script, concrete(override["Command"]))


def test_sagemaker_jobs_run_commands_the_trainer_image_really_has(asl: dict) -> None:
    jobs = tasks(asl, TRAINING_RESOURCE)
    assert set(jobs) == {"Train", "Evaluate"}
    scripts = image_scripts("trainer")
    for name, state in jobs.items():
        algorithm = state["Arguments"]["AlgorithmSpecification"]
        assert algorithm["TrainingImage"] == "${trainer_image}", name
        (script,) = algorithm["ContainerEntrypoint"]
        assert script in scripts, f"{name}: the trainer image declares no console script '{script}'"
        # `train` with no arguments is the SageMaker training-container contract (osft.trainer.sagemaker.run_job):
        # it reads these hyperparameters, and relaunches itself under torchrun on several hosts or GPUs.
        assert "ContainerArguments" not in algorithm, name
        hyperparameters = state["Arguments"]["HyperParameters"]
        assert set(hyperparameters) == {"spec", "run_dir", "stage"}, name
        assert hyperparameters["stage"] == {"Train": "train", "Evaluate": "evaluate"}[name], name


def test_stages_get_the_same_spec_and_run_folder(asl: dict) -> None:
    ecs = tasks(asl, ECS_RESOURCE)
    guard = ecs.pop("EstimateCost")["Arguments"]["Overrides"]["ContainerOverrides"][0]["Command"]
    assert guard == [
        "estimate",
        "--spec",
        "{% $specUri %}",
        "--run-dir",
        "{% $runDir %}",
        "--enforce",
        "--sagemaker",
    ], guard
    arguments = [s["Arguments"]["Overrides"]["ContainerOverrides"][0]["Command"] for s in ecs.values()]
    assert all(a == ["run", "--spec", "{% $specUri %}", "--run-dir", "{% $runDir %}"] for a in arguments), arguments
    for job in tasks(asl, TRAINING_RESOURCE).values():
        hyperparameters = job["Arguments"]["HyperParameters"]
        assert (hyperparameters["spec"], hyperparameters["run_dir"]) == ("{% $specUri %}", "{% $runDir %}")
    prepare = asl["States"]["Prepare"]["Assign"]
    assert prepare["specUri"].endswith("& '/spec.json' %}")
    write = asl["States"]["WriteSpec"]["Arguments"]
    assert write["Key"] == "{% $runPrefix & '/spec.json' %}" and "$string($spec)" in write["Body"]


def test_every_input_path_read_exists_in_the_run_spec_schema(asl: dict) -> None:
    osft = Path(sys.executable).with_name("osft")
    schema = json.loads(subprocess.run([str(osft), "schema"], capture_output=True, text=True, check=True).stdout)
    assert schema == json_schema()
    reads = spec_reads(asl)
    assert {"training.sagemaker", "deploy", "deploy.require_gate", "source.type", "name"} <= reads, reads
    unknown = sorted(p for p in reads if p and not schema_has(schema, schema, p.split(".")))
    assert not unknown, f"the state machine reads paths the run spec does not have: {unknown}"


def test_sagemaker_defaults_are_the_run_spec_defaults(asl: dict) -> None:
    defaults = asl["States"]["Prepare"]["Assign"]["sagemakerDefaults"]
    assert defaults == SageMakerTraining().model_dump(mode="json")


def test_gate_reads_only_what_evaluate_writes_to_gate_json(asl: dict) -> None:
    assert asl["States"]["ReadGate"]["Arguments"]["Key"] == "{% $runPrefix & '/evaluate/gate.json' %}"
    used = {m for e in expressions(asl) for m in re.findall(r"\$gate\.(\w+)", e)}
    assert used and used <= GATE_FILE_KEYS, used - GATE_FILE_KEYS


def test_success_output_reads_the_register_manifest_fields(asl: dict) -> None:
    schema = RegisterManifest.model_json_schema()
    used = {m for e in expressions(asl) for m in re.findall(r"\$registration((?:\.\w+)+)", e)}
    assert ".stats.model_id" in used
    for path in used:
        assert schema_has(schema, schema, path.lstrip(".").split(".")), f"register manifest has no {path}"
