"""The four Dockerfiles lint clean and keep the image rules: small, non-root, the stage as entrypoint.

There is no Docker engine here, so images are linted (hadolint, checkov) and read, not built.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import metadata

import pytest

from tests.infra.conftest import IMAGES, REPO, Tools


def dockerfile(image: str) -> str:
    return (REPO / "images" / image / "Dockerfile").read_text()


def final_stage(image: str) -> str:
    """The instructions of the last build stage (what ships)."""
    return re.split(r"^FROM ", dockerfile(image), flags=re.MULTILINE)[-1]


def test_hadolint_passes_every_dockerfile(tools: Tools, run_tool) -> None:
    files = [REPO / "images" / image / "Dockerfile" for image in IMAGES]
    result = run_tool(tools.hadolint, *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_no_failures_in_the_dockerfiles(tools: Tools, run_tool) -> None:
    result = run_tool(
        tools.checkov,
        "--quiet",
        "--compact",
        "--skip-download",
        "-d",
        "images",
        "--framework",
        "dockerfile",
        "-o",
        "json",
    )
    report = json.loads(result.stdout)
    failed = report["results"]["failed_checks"] if isinstance(report, dict) else []
    assert not failed, "\n".join(f"{c['check_id']} {c['file_path']}" for c in failed)


@pytest.mark.parametrize("image", IMAGES)
def test_image_is_multi_stage_on_a_pinned_base(image: str) -> None:
    bases = re.findall(r"^FROM (\S+)", dockerfile(image), flags=re.MULTILINE)
    assert len(bases) >= 2, f"{image}: expected a build stage and a runtime stage"
    for base in bases:
        assert re.search(r":\d+\.\d+\.\d+", base), f"{image}: base {base} is not pinned to a full version"


@pytest.mark.parametrize("image", ["extractor", "querygen", "registrar"])
def test_ecs_images_run_as_a_non_root_user_that_can_write_the_tmp_volume(image: str) -> None:
    stage = final_stage(image)
    users = re.findall(r"^USER (\S+)", stage, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{image}: the final stage must set a non-root USER"
    # ECS mounts a bind volume on /tmp (read-only root filesystem): on Fargate it is root-owned 0755 unless
    # the image declares /tmp a VOLUME, whose mode (1777 here) the mount then takes.
    assert re.search(r'^VOLUME \["/tmp"\]', stage, flags=re.MULTILINE), f"{image}: /tmp must be a VOLUME"
    assert "chmod 1777 /tmp" in stage.split("VOLUME")[0], f"{image}: make /tmp world-writable before VOLUME"


def test_trainer_image_runs_as_root_as_sagemaker_expects() -> None:
    users = re.findall(r"^USER (\S+)", final_stage("trainer"), flags=re.MULTILINE)
    assert not users or users[-1].split(":")[0] in ("root", "0"), "SageMaker mounts /opt/ml root-owned"


def installs(image: str) -> list[str]:
    """What the Dockerfile's pip installs resolve through: local packages with extras, and registry
    packages (those installed with --no-deps contribute no dependencies)."""
    roots: list[str] = []
    for line in re.findall(r"pip install ([^\n&]+)", dockerfile(image).replace("\\\n", " ")):
        no_deps = "--no-deps" in line
        for arg in line.split():
            arg = arg.strip('"')
            if arg.startswith("-"):
                continue
            local = re.match(r"/src/(shared|images/\w+)(?:\[(.*)\])?$", arg)
            if local:
                project = tomllib.loads((REPO / local.group(1) / "pyproject.toml").read_text())["project"]
                extras = [e for e in (local.group(2) or "").split(",") if e]
                roots += project.get("dependencies", [])
                roots += [d for e in extras for d in project.get("optional-dependencies", {})[e]]
            elif not no_deps:
                roots.append(arg)
    return roots


def reaches_torch(requirement: str, seen: set[str] | None = None) -> list[str] | None:
    """The chain from ``requirement`` to torch through installed package metadata, or None."""
    seen = set() if seen is None else seen
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
    if name == "torch":
        return ["torch"]
    if name in seen or name.startswith("osft-"):
        return None
    seen.add(name)
    try:
        declared = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return None
    for dependency in declared:
        if "extra ==" in dependency:
            continue
        chain = reaches_torch(dependency, seen)
        if chain:
            return [name, *chain]
    return None


@pytest.mark.parametrize("image", ["extractor", "querygen", "registrar"])
def test_stage_images_other_than_the_trainer_install_no_torch(image: str) -> None:
    assert "pytorch/" not in dockerfile(image)
    for requirement in installs(image):
        chain = reaches_torch(requirement)
        assert chain is None, f"{image}: installing {requirement} pulls torch: {' -> '.join(chain)}"


def stages(image: str) -> dict[str, str]:
    """Each build stage's instructions by stage name (``FROM base AS name``)."""
    found = re.findall(r"^FROM (\S+) AS (\S+)\n(.*?)(?=^FROM |\Z)", dockerfile(image), flags=re.MULTILINE | re.DOTALL)
    return {name: f"FROM {base}\n{body}" for base, name, body in found}


def test_trainer_image_has_cuda_torch_from_its_base() -> None:
    trainer = stages("trainer")
    for name in ("build", "runtime"):
        assert re.match(r"FROM pytorch/pytorch:[\d.]+-cuda[\d.]+-cudnn\d+-runtime", trainer[name]), name
    assert "--constraint" in trainer["build"], "pin torch to the base image's build so pip cannot swap it"
    assert list(trainer)[-1] == "runtime", "the CUDA image is the default target (training jobs, GPU endpoints)"


def test_trainer_cpu_serving_target_has_cpu_torch_of_the_cuda_bases_version() -> None:
    trainer = stages("trainer")
    cuda_torch = re.search(r"FROM pytorch/pytorch:([\d.]+)-", trainer["runtime"]).group(1)
    cpu_build = trainer["cpu-build"]
    assert "pytorch/" not in cpu_build and "pytorch/" not in trainer["serve-cpu"]
    assert "--index-url https://download.pytorch.org/whl/cpu" in cpu_build, "a CPU-only wheel, without CUDA"
    assert f"torch=={cuda_torch}" in cpu_build, "the CPU image serves with the torch the model was trained with"
    assert "--constraint" in cpu_build, "pin torch so installing the packages cannot swap it for a CUDA build"
    assert "COPY --from=cpu-build /opt/venv /opt/venv" in trainer["serve-cpu"]


@pytest.mark.parametrize("target", ["runtime", "serve-cpu"])
def test_both_serving_targets_follow_the_sagemaker_inference_contract(target: str) -> None:
    stage = stages("trainer")[target]
    assert "ENTRYPOINT" not in stage and re.search(r'^CMD \["serve"\]', stage, flags=re.MULTILINE)
    assert "EXPOSE 8080" in stage and "8080/ping" in stage
    assert not re.search(r"apt-get install|pip install|build-essential|gcc", stage)


@pytest.mark.parametrize("image", IMAGES)
def test_final_stage_installs_no_build_tools(image: str) -> None:
    final = final_stage(image)
    assert not re.search(r"apt-get install|pip install|build-essential|gcc", final), (
        f"{image}: build in the build stage"
    )


@pytest.mark.parametrize("image", ["extractor", "querygen", "registrar"])
def test_entrypoint_is_the_stage_command(image: str) -> None:
    scripts = tomllib.loads((REPO / "images" / image / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", final_stage(image), flags=re.MULTILINE).group(1))
    assert len(entrypoint) == 1 and entrypoint[0] in scripts, (
        f"{image}: ENTRYPOINT {entrypoint} is not its click command"
    )


def test_trainer_follows_the_sagemaker_container_contract() -> None:
    final = final_stage("trainer")
    assert "ENTRYPOINT" not in final, "SageMaker runs `IMAGE train` and `IMAGE serve`: the trainer has no ENTRYPOINT"
    assert re.search(r'^CMD \["serve"\]', final, flags=re.MULTILINE)
    assert "EXPOSE 8080" in final
    healthcheck = re.search(r"^HEALTHCHECK .*?(?=^\S)", final, flags=re.MULTILINE | re.DOTALL)
    assert healthcheck and "8080/ping" in healthcheck.group(0), "the serving image needs a HEALTHCHECK on /ping"


def test_build_context_sends_only_the_packages() -> None:
    ignore = (REPO / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1 :][:2] == ["!shared/", "!images/"]
