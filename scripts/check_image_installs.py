"""Install each image's packages the way its Dockerfile does, each into a fresh virtualenv, and use them.

There is no Docker engine here, so the images are linted but never built. This catches what a
build would without one: a dependency an image's code imports but its package does not declare
(the development virtualenv has every image's dependencies, so the tests cannot see that), a
module importing another image's package, a console script that does not start.

For each image: run the Dockerfile's ``pip install`` commands with ``/src/`` mapped to this
repository, import every ``osft`` module the image ships, and run each console script with
``--help``. The trainer image takes torch from its base image and pins it with a constraint
file; here the constraint pins the CPU wheel this machine installs (``TORCH``) instead.

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


def pip_installs(dockerfile: Path) -> list[list[str]]:
    """The arguments of each ``pip install`` in the Dockerfile, in order."""
    text = dockerfile.read_text().replace("\\\n", " ")
    installs = []
    for line in text.splitlines():
        if not line.startswith("RUN "):
            continue
        for command in line.removeprefix("RUN ").split("&&"):
            words = shlex.split(command)
            for i in range(len(words) - 1):
                if words[i].endswith("pip") and words[i + 1] == "install":
                    installs.append(words[i + 2 :])
    return installs


def local_arguments(arguments: list[str], constraint: Path) -> list[str]:
    """Dockerfile paths mapped to this machine: ``/src/`` is the repository, the torch pin is ours."""
    mapped = []
    for argument in arguments:
        if argument == TORCH_CONSTRAINT:
            mapped.append(str(constraint))
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


def check_image(image: str, workdir: Path) -> float:
    """Install, import and start one image's packages; the seconds it took."""
    clock = time.perf_counter()
    venv = workdir / image
    run([sys.executable, "-m", "venv", "--clear", str(venv)], f"{image}: venv")
    pip, python = str(venv / "bin" / "pip"), str(venv / "bin" / "python")
    dockerfile = REPO / "images" / image / "Dockerfile"
    installs = pip_installs(dockerfile)
    if not installs:
        raise CheckFailed(f"{image}: no pip install found in {dockerfile}")
    constraint = workdir / f"{image}-torch-constraint.txt"
    if any(TORCH_CONSTRAINT in arguments for arguments in installs):
        run([pip, "install", "--quiet", TORCH], f"{image}: pip install {TORCH} (the base image's torch)")
        constraint.write_text(TORCH + "\n")
    for arguments in installs:
        local = local_arguments(arguments, constraint)
        for argument in local:
            # setuptools builds a local project in its build/ folder and would ship files left there.
            project = Path(re.sub(r"\[.*\]$", "", argument))
            if project.is_dir():
                shutil.rmtree(project / "build", ignore_errors=True)
        run([pip, "install", "--quiet", *local], f"{image}: pip install {' '.join(local)}")
    run([python, "-c", IMPORT_ALL], f"{image}: importing every osft module")
    for script in console_scripts(image):
        run([str(venv / "bin" / script), "--help"], f"{image}: {script} --help")
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
                seconds = check_image(image, workdir)
            except CheckFailed as failure:
                failures += 1
                print(f"FAIL {failure}", flush=True)
                continue
            finally:
                if not keep:  # a trainer virtualenv takes about 2 GB
                    shutil.rmtree(workdir / image, ignore_errors=True)
            print(f"ok   {image}: installs alone, imports every module, scripts start ({seconds:.0f} s)", flush=True)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"image installs: {len(args.images or IMAGES) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
