"""Install each image's packages the way its Dockerfile does, each into a fresh virtualenv, and use them.

There is no Docker engine here, so the images are linted but never built. This catches what a
build would without one: a dependency an image's code imports but its package does not declare
(the development virtualenv has every image's dependencies, so the tests cannot see that), a
module importing another image's package, a console script that does not start.

For each build stage of each image that installs packages (the trainer has two: ``build`` for the
CUDA image, ``cpu-build`` for its ``serve-cpu`` target), in a virtualenv of its own: run the
stage's ``pip install`` commands with ``/src/`` mapped to this repository, import every ``osft``
module the image ships, and run each console script with ``--help``. The trainer's CUDA build
takes torch from its base image and pins it with a constraint file, and its CPU build installs
torch from the PyTorch CPU index; here both get the CPU wheel this machine installs (``TORCH``).

Usage: python scripts/check_image_installs.py [IMAGE ...] [--workdir DIR]
Exit status 1 when an image fails, with the failing command's output.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES = ("extractor", "querygen", "registrar", "trainer")
TORCH = "torch==2.13.0"
TORCH_CONSTRAINT = "/tmp/torch-constraint.txt"
IMPORT_ALL = """
import importlib, pkgutil, sys
import osft
failed = []
for module in pkgutil.walk_packages(osft.__path__, "osft."):
    try:
        importlib.import_module(module.name)
    except Exception as exc:
        failed.append(f"{module.name}: {exc!r}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


class CheckFailed(RuntimeError):
    pass


def stage_installs(dockerfile: Path) -> dict[str, list[list[str]]]:
    """The arguments of each ``pip install`` in the Dockerfile, in order, by build stage (those with any)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    stages: dict[str, list[list[str]]] = {}
    stage = ""
    for line in text.splitlines():
        if line.startswith("FROM "):
            words = line.split()
            stage = words[3] if len(words) > 3 and words[2].upper() == "AS" else words[1]
            continue
        if not line.startswith("RUN "):
            continue
        for command in line.removeprefix("RUN ").split("&&"):
            words = shlex.split(command)
            for i in range(len(words) - 1):
                if words[i].endswith("pip") and words[i + 1] == "install":
                    stages.setdefault(stage, []).append(words[i + 2 :])
    return stages


def local_arguments(arguments: list[str], constraint: Path) -> list[str]:
    """Dockerfile arguments mapped to this machine: ``/src/`` is the repository, torch and its pin are ours
    (a ``torch==`` from another index becomes ``TORCH`` from this machine's)."""
    mapped: list[str] = []
    skip_next = False
    for argument in arguments:
        if skip_next:
            skip_next = False
        elif argument in ("--index-url", "-i"):
            skip_next = True
        elif argument == TORCH_CONSTRAINT:
            mapped.append(str(constraint))
        elif argument.startswith("torch=="):
            mapped.append(TORCH)
        else:
            mapped.append(re.sub(r"^/src/", f"{REPO}/", argument))
    return mapped


def console_scripts(image: str) -> list[str]:
    scripts = []
    for project in (REPO / "shared", REPO / "images" / image):
        scripts += list(tomllib.loads((project / "pyproject.toml").read_text())["project"].get("scripts", {}))
    return scripts


def run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-30:]
        raise CheckFailed(f"{what} failed ({result.returncode}):\n" + "\n".join(output))


def check_image(image: str, workdir: Path, keep: bool) -> list[str]:
    """Install, import and start one image's packages, stage by stage; what was checked, with seconds."""
    dockerfile = REPO / "images" / image / "Dockerfile"
    stages = stage_installs(dockerfile)
    if not stages:
        raise CheckFailed(f"{image}: no pip install found in {dockerfile}")
    checked = []
    for stage, installs in stages.items():
        name = image if len(stages) == 1 else f"{image} ({stage})"
        venv = workdir / f"{image}-{stage}"
        try:
            seconds = check_stage(name, installs, venv, workdir / f"{image}-{stage}-torch-constraint.txt", image)
        finally:
            if not keep:  # a trainer virtualenv takes about 2 GB
                shutil.rmtree(venv, ignore_errors=True)
        checked.append(f"{name} {seconds:.0f} s")
    return checked


def check_stage(name: str, installs: list[list[str]], venv: Path, constraint: Path, image: str) -> float:
    """One build stage's installs in a fresh virtualenv, then import everything and start each script."""
    clock = time.perf_counter()
    run([sys.executable, "-m", "venv", "--clear", str(venv)], f"{name}: venv")
    pip, python = str(venv / "bin" / "pip"), str(venv / "bin" / "python")
    installs_torch = any(a.startswith("torch==") for arguments in installs for a in arguments)
    if any(TORCH_CONSTRAINT in arguments for arguments in installs) and not installs_torch:
        run([pip, "install", "--quiet", TORCH], f"{name}: pip install {TORCH} (the base image's torch)")
    constraint.write_text(TORCH + "\n")
    for arguments in installs:
        local = local_arguments(arguments, constraint)
        for argument in local:
            # setuptools builds a local project in its build/ folder and would ship files left there.
            project = Path(re.sub(r"\[.*\]$", "", argument))
            if project.is_dir():
                shutil.rmtree(project / "build", ignore_errors=True)
        run([pip, "install", "--quiet", *local], f"{name}: pip install {' '.join(local)}")
    run([python, "-c", IMPORT_ALL], f"{name}: importing every osft module")
    for script in console_scripts(image):
        run([str(venv / "bin" / script), "--help"], f"{name}: {script} --help")
    return time.perf_counter() - clock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", metavar="IMAGE", help=f"any of {', '.join(IMAGES)} (default: all)")
    parser.add_argument(
        "--workdir", type=Path, help="keep the virtualenvs here (default: a temporary folder, removed image by image)"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.images) - set(IMAGES))
    if unknown:
        parser.error(f"unknown image {', '.join(unknown)}; choose from {', '.join(IMAGES)}")
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="osft-image-installs-"))
    workdir.mkdir(parents=True, exist_ok=True)
    failures = 0
    try:
        for image in args.images or IMAGES:
            try:
                checked = check_image(image, workdir, keep)
            except CheckFailed as failure:
                failures += 1
                print(f"FAIL {failure}", flush=True)
                continue
            print(
                f"ok   {image}: installs alone, imports every module, scripts start ({'; '.join(checked)})", flush=True
            )
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"image installs: {len(args.images or IMAGES) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
