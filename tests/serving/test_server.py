"""The model server over real HTTP on 127.0.0.1 with the packaged MiniLM (and a tiny SPLADE model)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from osft.common.errors import OsftError
from osft.trainer.serving.encoder import Encoder, load_encoder
from osft.trainer.serving.settings import ServeSettings
from tests.serving.conftest import running_server

TEXTS = ["How do I parse JSON in Python?", "pathlib joins paths with the / operator", "itertools.chain"]


@pytest.fixture(scope="module")
def dense_url(dense_encoder: Encoder):
    with running_server(dense_encoder, ServeSettings(max_inputs=8, max_text_chars=500, max_body_bytes=2048)) as url:
        yield url


def test_invocations_answers_the_sagemaker_connector_shape_with_the_models_embeddings(dense_url, dense_encoder):
    response = httpx.post(f"{dense_url}/invocations", json=TEXTS, timeout=30)
    assert response.status_code == 200
    vectors = np.array(response.json())
    expected = dense_encoder.model.encode(TEXTS)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_embed_info_and_healthz_describe_the_served_model(dense_url):
    embed = httpx.post(f"{dense_url}/embed", json={"inputs": ["hello world"]}, timeout=30).json()
    info = httpx.get(f"{dense_url}/info").json()
    assert embed["dim"] == 384 and len(embed["embeddings"][0]) == 384
    assert (info["dimension"], info["device"], info["precision"], info["kind"]) == (384, "cpu", "fp32", "dense")
    assert httpx.get(f"{dense_url}/healthz").json()["status"] == "ok"


@pytest.mark.parametrize(
    ("route", "body", "status", "message"),
    [
        ("/invocations", b"not json", 400, "not valid JSON"),
        ("/invocations", json.dumps({"text": ["a"]}).encode(), 400, "no 'inputs' field"),
        ("/invocations", json.dumps(["a", 3]).encode(), 400, "inputs[1] is int"),
        ("/embed", json.dumps(["a"]).encode(), 400, '{"inputs"'),
        ("/invocations", json.dumps(["a"] * 9).encode(), 413, "9 texts in one request; the limit is 8"),
        ("/invocations", json.dumps(["x" * 501]).encode(), 413, "inputs[0] has 501 characters"),
        ("/invocations", json.dumps(["y" * 400] * 8).encode(), 413, "the limit is 2048 bytes"),
    ],
)
def test_bad_or_oversized_requests_get_a_clear_4xx(dense_url, route, body, status, message):
    response = httpx.post(f"{dense_url}{route}", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert message in response.json()["error"]


def test_concurrent_requests_are_encoded_in_shared_batches_and_each_gets_its_own_answer(dense_encoder):
    texts = [f"document number {i} about the json module" for i in range(24)]
    expected = dense_encoder.model.encode(texts)
    with running_server(dense_encoder, ServeSettings(max_wait_ms=40, max_batch_size=64)) as url:
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda t: httpx.post(f"{url}/invocations", json=[t], timeout=30).json()[0], texts))
        metrics = httpx.get(f"{url}/metrics").text
    np.testing.assert_allclose(np.array(answers), expected, atol=1e-5)
    batches = _sample(metrics, "osft_serve_batch_texts_count")
    # 2 warm-up batches are not counted (they bypass the batcher); 24 single-text requests in fewer model calls.
    assert _sample(metrics, "osft_serve_batch_texts_sum") == 24
    assert batches < 24


def test_metrics_are_prometheus_text_with_requests_and_latency(dense_url):
    httpx.post(f"{dense_url}/invocations", json=["one"], timeout=30)
    response = httpx.get(f"{dense_url}/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert _sample(response.text, 'osft_serve_requests_total{route="/invocations",status="200"}') >= 1
    assert _sample(response.text, 'osft_serve_request_seconds_bucket{le="+Inf",route="/invocations"}') >= 1


def test_requests_beyond_the_concurrency_bound_get_503(minilm_dir: Path):
    class SlowEncoder(Encoder):
        def encode(self, texts):
            time.sleep(0.5)
            return super().encode(texts)

    base = load_encoder(ServeSettings(model=str(minilm_dir), device="cpu"))
    slow = SlowEncoder(base.model, base.name, base.kind, base.backend, base.precision)
    settings = ServeSettings(max_concurrency=1, queue_timeout_s=0.1, warmup_rounds=0)
    with running_server(slow, settings) as url, ThreadPoolExecutor(max_workers=3) as pool:
        statuses = sorted(
            pool.map(lambda _: httpx.post(f"{url}/invocations", json=["x"], timeout=30).status_code, [0, 1, 2])
        )
    assert statuses[0] == 200 and 503 in statuses


def test_sparse_model_answers_token_weight_maps(sparse_model_dir: Path):
    encoder = load_encoder(ServeSettings(model=str(sparse_model_dir), device="cpu"))
    with running_server(encoder, ServeSettings()) as url:
        maps = httpx.post(f"{url}/invocations", json=["json parsing", "path joining"], timeout=30).json()
        info = httpx.get(f"{url}/info").json()
    assert info["kind"] == "sparse" and info["dimension"] == 30522
    assert len(maps) == 2 and all(isinstance(m, dict) and m for m in maps)
    assert all(isinstance(token, str) and weight > 0 for m in maps for token, weight in m.items())


def test_int8_onnx_export_is_served_and_stays_close_to_fp32(int8_model_dir: Path, dense_encoder: Encoder):
    encoder = load_encoder(ServeSettings(model=str(int8_model_dir), precision="int8"))
    with running_server(encoder, ServeSettings()) as url:
        vectors = np.array(httpx.post(f"{url}/invocations", json=TEXTS, timeout=30).json())
        info = httpx.get(f"{url}/info").json()
    assert (info["precision"], info["backend"]) == ("int8", "onnx")
    fp32 = dense_encoder.model.encode(TEXTS)
    cosine = (vectors * fp32).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(fp32, axis=1)
    assert cosine.min() > 0.95


def test_int8_precision_without_an_onnx_export_is_a_clear_error(minilm_dir: Path):
    with pytest.raises(OsftError, match="no int8 ONNX file"):
        load_encoder(ServeSettings(model=str(minilm_dir), precision="int8"))


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{metrics}")
