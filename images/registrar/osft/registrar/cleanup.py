"""``register cleanup``: delete a run's SageMaker endpoint, endpoint configs and models.

The names come from the run's ``register/registration.json`` when it exists, else from the
spec (the endpoint name) and the endpoint itself (its config and that config's models).
The register manifest is removed too, so the next ``osft run`` deploys again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from osft.common.errors import OsftError
from osft.common.logging import get_logger
from osft.common.stage import MANIFEST_FILE, load_spec
from osft.common.storage import Location, join
from osft.registrar.sagemaker_deploy import SageMakerDeployer, sagemaker_client
from osft.registrar.stage import REGISTRATION_FILE


@dataclass
class CleanupResult:
    endpoint_name: str
    deleted: list[str]


def cleanup_run(spec_uri: str, run_dir: str, *, timeout_s: int | None = None) -> CleanupResult:
    """Delete the endpoint, configs and models of the run; resources already gone are skipped."""
    spec = load_spec(spec_uri)
    sagemaker = spec.deploy.sagemaker if spec.deploy else None
    recorded: dict = {}
    registration = Location(join(run_dir, "register", REGISTRATION_FILE))
    if registration.exists():
        recorded = json.loads(registration.read_text()).get("sagemaker") or {}
    endpoint_name = recorded.get("endpoint_name") or (
        (sagemaker.endpoint_name or f"osft-{spec.name}") if sagemaker else None
    )
    if endpoint_name is None:
        raise OsftError(
            f"{spec_uri}: the spec has no deploy.sagemaker section and {registration.uri} names no endpoint",
            hint="nothing to clean up on SageMaker for this run",
        )
    region = recorded.get("region") or (sagemaker.region if sagemaker else None)
    wait = timeout_s or (sagemaker.wait_timeout_s if sagemaker else 1800)
    deployer = SageMakerDeployer(sagemaker_client(region), timeout_s=wait, poll_s=15)
    configs = [recorded["endpoint_config_name"]] if recorded.get("endpoint_config_name") else []
    deleted = deployer.delete_endpoint(endpoint_name, configs, list(recorded.get("model_names") or []))
    Location(join(run_dir, "register", MANIFEST_FILE)).delete_tree()
    get_logger(run_id=spec.name, stage="register").info("cleanup_done", endpoint=endpoint_name, deleted=deleted)
    return CleanupResult(endpoint_name, deleted)
