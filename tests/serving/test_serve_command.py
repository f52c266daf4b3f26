"""The ``serve`` console script, as SageMaker starts it (``docker run <image> serve``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.serving.conftest import free_port

SERVE = str(Path(sys.executable).with_name("serve"))


def test_serve_command_serves_the_model_named_by_the_environment(minilm_dir: Path):
    port = free_port()
    env = {**os.environ, "OSFT_SERVE_MODEL": str(minilm_dir), "OSFT_SERVE_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([SERVE, "--host", "127.0.0.1"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        vectors = httpx.post(f"http://127.0.0.1:{port}/invocations", json=["hello", "world"], timeout=30).json()
        assert len(vectors) == 2 and len(vectors[0]) == 384
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_command_without_a_model_folder_says_where_it_looked():
    from click.testing import CliRunner

    from osft.trainer.cli import serve_cli

    result = CliRunner().invoke(serve_cli, ["--model", "/nonexistent/model"])
    assert result.exit_code == 1
    assert "model folder /nonexistent/model does not exist" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
