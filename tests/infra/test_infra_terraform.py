"""terraform/ is formatted, valid with hashicorp/aws 5.100.0, clean under checkov, and applies to moto."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.infra.conftest import ASL_FILE, REPO, TERRAFORM_DIR, Terraform, Tools

SKIP_COMMENT = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::\s*(.*))?")


def test_terraform_files_are_formatted(terraform: Terraform) -> None:
    result = terraform.run("fmt", "-check", "-recursive", "-diff", "-no-color")
    assert result.returncode == 0, f"run `terraform -chdir=terraform fmt -recursive`:\n{result.stdout}{result.stderr}"


def test_terraform_configuration_is_valid(terraform: Terraform) -> None:
    result = terraform.run("validate", "-no-color")
    assert result.returncode == 0, result.stdout + result.stderr


def test_provider_resolves_to_the_mirrored_5_100_0(terraform: Terraform) -> None:
    result = terraform.run("version", "-json")
    providers = json.loads(result.stdout)["provider_selections"]
    assert providers.get("registry.terraform.io/hashicorp/aws") == "5.100.0"


def test_every_variable_and_output_is_described_and_typed() -> None:
    variables = (TERRAFORM_DIR / "variables.tf").read_text()
    blocks = re.findall(r'variable "(\w+)" \{(.*?)\n\}', variables, re.DOTALL)
    assert blocks, "no variables found in variables.tf"
    for name, body in blocks:
        assert re.search(r"^\s+description\s*=", body, re.MULTILINE), f"variable {name} has no description"
        assert re.search(r"^\s+type\s*=", body, re.MULTILINE), f"variable {name} has no type"
    outputs = re.findall(r'output "(\w+)" \{(.*?)\n\}', (TERRAFORM_DIR / "outputs.tf").read_text(), re.DOTALL)
    for name, body in outputs:
        assert "description" in body, f"output {name} has no description"


def test_checkov_finds_no_failures_in_terraform(tools: Tools, run_tool) -> None:
    result = run_tool(
        tools.checkov,
        "--quiet",
        "--compact",
        "--skip-download",
        "-d",
        "terraform",
        "--framework",
        "terraform",
        "-o",
        "json",
    )
    report = json.loads(result.stdout)
    failed = report["results"]["failed_checks"] if isinstance(report, dict) else []
    problems = [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']})" for c in failed]
    assert not problems, "checkov failures (fix them, or skip inline with the reason):\n" + "\n".join(problems)
    assert report["summary"]["passed"] > 100, "checkov checked suspiciously little; is terraform/ parsed?"


def test_every_checkov_skip_gives_its_reason() -> None:
    files = [*TERRAFORM_DIR.glob("*.tf"), *REPO.glob("images/*/Dockerfile")]
    skips = [(f, m) for f in files for m in SKIP_COMMENT.finditer(f.read_text())]
    assert skips, "expected the documented skips (e.g. S3 access logging) to be found"
    for file, match in skips:
        reason = (match.group(2) or "").strip()
        assert len(reason) >= 20, f"{file.name}: checkov:skip={match.group(1)} needs a reason after the colon"


def test_template_placeholders_are_all_provided_by_sfn_tf() -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL_FILE.read_text()))
    sfn = (TERRAFORM_DIR / "sfn.tf").read_text()
    provided = set(re.findall(r"^\s+(\w+)\s+=", sfn.split("templatefile(", 1)[1].split("})", 1)[0], re.MULTILINE))
    assert placeholders == provided, f"missing in sfn.tf: {placeholders - provided}; unused: {provided - placeholders}"
    assert "%{" not in ASL_FILE.read_text(), "'%{' starts a Terraform template directive; write '% {' in JSONata"


def _moto(action: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "infra_moto.py"), action, *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )


def test_example_tfvars_plan_and_apply_against_moto(terraform: Terraform, tmp_path: Path) -> None:
    """Plan and apply with examples/example.tfvars against moto; the stored definition is fully rendered.

    `make tf-plan MOTO=1` runs the plan alone. One apply (which plans first) keeps the suite short.
    """
    out = tmp_path / "apply.json"
    result = _moto("apply", "--json", str(out))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert re.search(r"Plan: \d+ to add, 0 to change, 0 to destroy", result.stdout), result.stdout[-2000:]
    assert "Apply complete!" in result.stdout
    applied = json.loads(out.read_text())
    definition_text = json.dumps(applied["definition"])
    assert "${" not in definition_text, "a Terraform placeholder was left unrendered"
    outputs = applied["outputs"]
    assert set(outputs["ecr_repository_urls"]) == {"extractor", "querygen", "trainer", "registrar"}
    train = applied["definition"]["States"]["Train"]["Arguments"]
    assert (
        train["AlgorithmSpecification"]["TrainingImage"]
        == f"{outputs['ecr_repository_urls']['trainer']}:{outputs['image_tag']}"
    )
    assert train["RoleArn"] == outputs["sagemaker_execution_role_arn"]
    assert f"s3://{outputs['run_bucket']}/runs/" in applied["definition"]["States"]["Prepare"]["Assign"]["runDir"]
    extract = applied["definition"]["States"]["Extract"]["Arguments"]
    assert extract["Cluster"] == outputs["ecs_cluster_arn"]
    assert extract["TaskDefinition"].endswith(":task-definition/osft-extract")
    containers = applied["containers"]
    assert set(containers) == {"extract", "estimate", "querygen", "register"}
    assert containers["estimate"]["entryPoint"] == ["osft"], "the cost guard runs `osft estimate` on the extractor"
    assert containers["estimate"]["image"] == containers["extract"]["image"]
    assert not any(containers[name].get("entryPoint") for name in ("extract", "querygen", "register"))
    register_env = {item["name"]: item["value"] for item in containers["register"]["environment"]}
    trainer_image = f"{outputs['ecr_repository_urls']['trainer']}:{outputs['image_tag']}"
    assert register_env["OSFT_TRAINER_IMAGE_URI"] == trainer_image
    assert register_env["OSFT_SERVE_CPU_IMAGE_URI"] == f"{trainer_image}-cpu", "CPU endpoints serve the CPU build"
