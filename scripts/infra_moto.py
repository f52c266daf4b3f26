"""Run ``terraform plan`` or ``apply`` of terraform/ against a local moto server.

Proves the configuration is coherent end to end without AWS: a moto server on 127.0.0.1 stands in
for every AWS API the provider calls, with fake credentials. The module is copied to a temporary
folder with a ``moto_override.tf`` that points the provider's endpoints at the server, so
terraform/ itself is never changed.

    .venv/bin/python scripts/infra_moto.py plan  --var-file terraform/examples/example.tfvars
    .venv/bin/python scripts/infra_moto.py apply --var-file terraform/examples/example.tfvars --json out.json

``apply`` writes the Terraform outputs, the state machine definition and the ECS container
definitions moto stored to ``--json``; nothing is destroyed afterwards because the moto server and
the temporary state are discarded.
moto lacks ValidateStateMachineDefinition and ListStateMachineVersions, which the provider calls;
this script stands in for both (see the functions below).
Exit code: terraform's (0 on success).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULE = REPO / "terraform"
OFFLINE_RC = MODULE / ".terraformrc.offline"
# Provider endpoint names (hashicorp/aws 5.x) of every service the module touches.
SERVICES = ("ecr", "ecs", "iam", "kms", "logs", "s3", "sfn", "sts")
TIMEOUT_S = 300
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _validate_state_machine_definition(self: object) -> str:
    """Stand-in for ValidateStateMachineDefinition, which moto does not implement.

    The provider calls it before CreateStateMachine. The real linting is statelint's and
    scripts/infra_jsonata_syntax.py's; this checks only that StartAt names a state.
    """
    definition = json.loads(self._get_param("definition"))  # type: ignore[attr-defined]
    states = definition.get("States", {})
    ok = definition.get("StartAt") in states
    diagnostics = (
        [] if ok else [{"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": "StartAt names no state"}]
    )
    return json.dumps({"result": "OK" if ok else "FAIL", "diagnostics": diagnostics, "truncated": False})


def _list_state_machine_versions(self: object) -> str:
    """Stand-in for ListStateMachineVersions (not in moto): the module publishes no versions."""
    return json.dumps({"stateMachineVersions": []})


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Run moto's server in a thread on a free loopback port; yield its URL; stop it on exit."""
    try:
        from moto.server import ThreadedMotoServer
        from moto.stepfunctions.responses import StepFunctionResponse
    except ImportError:
        raise SystemExit("error: moto[server] is not installed in this venv (make install)") from None

    StepFunctionResponse.validate_state_machine_definition = _validate_state_machine_definition  # type: ignore[attr-defined]
    StepFunctionResponse.list_state_machine_versions = _list_state_machine_versions  # type: ignore[attr-defined]
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def override(url: str) -> str:
    endpoints = "\n".join(f'    {name} = "{url}"' for name in SERVICES)
    return f"""# Written by scripts/infra_moto.py: every AWS API goes to the local moto server.
provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  # Fail fast on an API moto lacks instead of retrying for minutes.
  max_retries = 1

  endpoints {{
{endpoints}
  }}
}}
"""


def terraform_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env["TF_IN_AUTOMATION"] = "1"
    env["CHECKPOINT_DISABLE"] = "1"  # no version check call-out: the network is closed
    env["TF_DATA_DIR"] = str(workdir / ".terraform")
    if Path("/opt/tf-plugins").is_dir():
        env["TF_CLI_CONFIG_FILE"] = str(OFFLINE_RC)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
    print("+", " ".join(cmd), flush=True)
    try:
        return subprocess.run(cmd, cwd=cwd, env=env, check=False, timeout=TIMEOUT_S).returncode
    except subprocess.TimeoutExpired:
        print(f"error: {cmd[1]} took longer than {TIMEOUT_S} s", file=sys.stderr)
        return 124


def stored_definition(url: str, arn: str) -> dict:
    """The state machine definition as moto stored it (what AWS would run)."""
    import boto3

    client = boto3.client("stepfunctions", endpoint_url=url, region_name=arn.split(":")[3], **_boto_credentials())
    return json.loads(client.describe_state_machine(stateMachineArn=arn)["definition"])


def stored_containers(url: str, region: str) -> dict[str, dict]:
    """The container definition of every ECS task definition moto stored, by container name."""
    import boto3

    client = boto3.client("ecs", endpoint_url=url, region_name=region, **_boto_credentials())
    containers = {}
    for arn in client.list_task_definitions()["taskDefinitionArns"]:
        for container in client.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"]:
            containers[container["name"]] = container
    return containers


def _boto_credentials() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["plan", "apply"])
    parser.add_argument("--var-file", type=Path, default=MODULE / "examples" / "example.tfvars")
    parser.add_argument("--json", type=Path, help="apply: write outputs and the stored definition here")
    args = parser.parse_args(argv)
    terraform = shutil.which("terraform")
    if terraform is None:
        raise SystemExit("error: terraform not found on PATH; install Terraform >= 1.6")

    with tempfile.TemporaryDirectory(prefix="osft-tf-moto-") as tmp:
        workdir = Path(tmp) / "module"
        shutil.copytree(
            MODULE, workdir, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl")
        )
        var_file = args.var_file.resolve()
        with moto_server() as url:
            (workdir / "moto_override.tf").write_text(override(url))
            env = terraform_env(Path(tmp))
            code = run([terraform, "init", "-backend=false", "-input=false", "-no-color"], workdir, env)
            if code:
                return code
            common = ["-input=false", "-no-color", f"-var-file={var_file}"]
            if args.action == "plan":
                return run([terraform, "plan", *common], workdir, env)
            code = run([terraform, "apply", "-auto-approve", *common], workdir, env)
            if code:
                return code
            outputs = json.loads(
                subprocess.run(
                    [terraform, "output", "-json"], cwd=workdir, env=env, check=True, capture_output=True, text=True
                ).stdout
            )
            values = {name: item["value"] for name, item in outputs.items()}
            arn = values["state_machine_arn"]
            result = {
                "outputs": values,
                "definition": stored_definition(url, arn),
                "containers": stored_containers(url, arn.split(":")[3]),
            }
            if args.json:
                args.json.write_text(json.dumps(result, indent=2))
            print(f"applied against moto: {len(values)} outputs; the moto server and its state are discarded")
            return 0


if __name__ == "__main__":
    sys.exit(main())
