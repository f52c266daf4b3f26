"""`osft run` with a deployment target ends with a model_id: the whole pipeline, then registration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sentence_transformers import SentenceTransformer

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


def test_a_run_whose_model_the_gate_rejects_can_deploy_the_base_model_with_its_hybrid_search_and_passages(
    ml_server, tmp_path, tiny_corpus, tiny_spec
):
    server = ml_server()
    data = tiny_spec(
        tiny_corpus,
        training={"max_steps": 1, "batch_size": 8, "export": {"opensearch_zip": True}},
        evaluation={"batch_size": 32, "min_gain": 1.0},  # a gain no model reaches: the gate rejects
        deploy={
            "opensearch": opensearch_section(
                server.url,
                mode="local",
                local_upload="chunks",
                search_check={},
                hybrid_search={},
                passage_vectors={},
            ),
            "when_rejected": "base",
        },
    )
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(data))
    run_dir = tmp_path / "runs" / "tiny"

    result = run_pipeline(str(spec_path), run_dir=str(run_dir))

    evaluation = result.manifest("evaluate").stats
    assert not evaluation.accepted and evaluation.base_model_dir == "evaluate/base_model"
    base_zip = evaluation.base_exports["opensearch_torchscript_zip"]
    assert base_zip["path"] == "evaluate/exports/tiny-base-torchscript.zip" and (run_dir / base_zip["path"]).is_file()
    saved = SentenceTransformer(str(run_dir / "evaluate" / "base_model"), device="cpu")
    assert saved.max_seq_length == 64, "the base ships as it was evaluated"
    register = result.manifest("register").stats
    assert register.deployed_model == "base"
    assert server.models[register.model_id]["model_content_hash_value"] == base_zip["sha256"]
    assert server.models[register.model_id]["model_state"] == "DEPLOYED"
    # The stand-in embeds with the packaged MiniLM, the base here: the smoke test's match proves the base shipped.
    assert register.smoke_test.startswith("passed: 3 texts, dimension 384, min cosine")
    assert "hybrid query through osft-hybrid returned the right document first" in register.smoke_test
    assert server.search_pipelines["osft-hybrid"]
    assert register.passage_pipeline == "osft-passages" and server.pipelines["osft-passages"]
    assert "hybrid query with passage vectors through osft-hybrid-passages returned the right document first" in (
        register.smoke_test
    )
    assert (run_dir / "register" / "passage_index.json").is_file()
