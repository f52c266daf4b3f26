"""The register stage's decisions that need no service: the gate, the connector shape per model kind."""

from __future__ import annotations

import json

from osft.common.stage import run_stage
from osft.registrar.connector import POST_PROCESS_DENSE, PRE_PROCESS, sagemaker_connector
from osft.registrar.smoke_test import embeddings_from_predict
from osft.registrar.stage import STAGE
from tests.registrar.conftest import opensearch_section


def test_a_model_the_gate_rejected_is_not_deployed(run_folder):
    spec, run_dir = run_folder({"opensearch": opensearch_section("http://127.0.0.1:9", mode="local")}, accepted=False)
    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))
    assert manifest.stats.skipped_reason.startswith("the evaluation gate rejected the model")
    assert json.loads((run_dir / "register" / "registration.json").read_text())["deployed"] is False


def test_sparse_connectors_keep_the_token_weight_maps_and_dense_ones_post_process():
    common = {"endpoint_name": "e", "region": "eu-west-1", "role_arn": "arn:aws:iam::1:role/r", "description": "d"}
    dense = sagemaker_connector(kind="dense", **common).body["actions"][0]
    sparse = sagemaker_connector(kind="sparse", **common).body["actions"][0]
    assert dense["pre_process_function"] == sparse["pre_process_function"] == PRE_PROCESS
    assert dense["post_process_function"] == POST_PROCESS_DENSE and "post_process_function" not in sparse
    assert sparse["url"] == "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/e/invocations"


def test_predict_answers_of_every_shape_are_read_as_embeddings():
    remote_dense = {
        "inference_results": [{"output": [{"name": "sentence_embedding", "data": [1, 2]}, {"data": [3, 4]}]}]
    }
    remote_sparse = {
        "inference_results": [{"output": [{"name": "response", "dataAsMap": {"response": [{"a": 1}, {"b": 2}]}}]}]
    }
    local_sparse = {"inference_results": [{"output": [{"dataAsMap": {"response": [{"a": 1}]}}]}] * 2}
    assert embeddings_from_predict(remote_dense) == [[1.0, 2.0], [3.0, 4.0]]
    assert embeddings_from_predict(remote_sparse) == [{"a": 1.0}, {"b": 2.0}]
    assert embeddings_from_predict(local_sparse) == [{"a": 1.0}, {"a": 1.0}]
