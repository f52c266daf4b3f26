"""`osft run` with a deployment target ends with a model_id: the whole pipeline, then registration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osft.common.report import render_report
from osft.common.runner import run_pipeline
from osft.registrar.sagemaker_deploy import runtime_url
from osft.trainer.serving.encoder import load_encoder
from osft.trainer.serving.settings import ServeSettings
from tests.registrar.conftest import REGION, opensearch_section, sagemaker_section
from tests.serving.conftest import running_server

pytestmark = pytest.mark.slow


def test_osft_run_with_a_deploy_section_ends_with_a_model_id(aws, ml_server, tmp_path, tiny_corpus, tiny_spec):
    spec_path = tmp_path / "spec.json"
    data = tiny_spec(tiny_corpus, training={"max_steps": 2, "batch_size": 8})
    spec_path.write_text(json.dumps(data))
    run_dir = tmp_path / "runs" / "tiny"
    trained = run_pipeline(str(spec_path), run_dir=str(run_dir))
    assert [o.stage for o in trained.outcomes] == ["extract", "querygen", "train", "evaluate"]

    # The fine-tuned model served by the trainer image's server stands in for the SageMaker endpoint.
    encoder = load_encoder(ServeSettings(model=str(run_dir / "train" / "model"), device="cpu"))
    with running_server(encoder, ServeSettings(warmup_rounds=1)) as endpoint:
        server = ml_server(connector_urls={runtime_url(REGION, "osft-tiny"): f"{endpoint}/invocations"})
        # A few training steps need not beat the base, so this run deploys regardless of the gate.
        data["deploy"] = {
            "sagemaker": sagemaker_section(),
            "opensearch": opensearch_section(server.url, mode="remote"),
            "require_gate": False,
        }
        spec_path.write_text(json.dumps(data))
        result = run_pipeline(str(spec_path), run_dir=str(run_dir))

    skipped = {o.stage: o.skipped for o in result.outcomes}
    assert skipped == {"extract": True, "querygen": True, "train": True, "evaluate": True, "register": False}
    registration = json.loads(Path(run_dir / "register" / "registration.json").read_text())
    model_id = result.manifest("register").stats.model_id
    assert model_id and registration["model_id"] == model_id
    assert server.models[model_id]["model_state"] == "DEPLOYED"
    assert f"OpenSearch model_id: {model_id}" in render_report(result)
