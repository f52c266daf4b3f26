"""Each provider through ``osft run SPEC --until querygen``: the real extract stage, then querygen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from openai_server import ChatServer

from osft.common.cli import main
from tests.querygen.conftest import make_docs

BEDROCK = {"region": "us-east-1", "retry_base_seconds": 0.001}


@pytest.mark.parametrize("provider", ["offline", "bedrock", "bedrock-batch", "openai"])
def test_osft_run_until_querygen_works_with_each_provider(provider, tmp_path: Path, fake_converse, monkeypatch):
    docs = make_docs(6)
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    querygen: dict = {"provider": provider, "heldout_fraction": 0.0}
    server = None
    if provider in ("bedrock", "bedrock-batch"):
        fake = fake_converse()
        querygen["bedrock"] = BEDROCK
    if provider == "bedrock-batch":  # 6 documents: below the batch minimum, so on demand (and said so)
        querygen["bedrock"] = {
            **BEDROCK,
            "staging_uri": "s3://unused/batch",
            "service_role_arn": "arn:aws:iam::123456789012:role/BedrockBatchRole",
        }
    if provider == "openai":
        server = ChatServer().start()
        monkeypatch.setenv("QG_TEST_KEY", "sk-test")
        querygen.update(model_id="llama3.1:8b", openai={"base_url": server.url, "api_key_env": "QG_TEST_KEY"})
    spec = {"name": "qg-cli", "source": {"type": "local", "path": "corpus.jsonl"}, "querygen": querygen}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    try:
        result = CliRunner().invoke(
            main, ["run", str(tmp_path / "spec.json"), "--until", "querygen", "--runs-root", str(tmp_path / "runs")]
        )
    finally:
        if server:
            server.stop()
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "runs/qg-cli/querygen/manifest.json").read_text())
    assert manifest["stats"]["provider"] == provider
    assert {json.loads(line)["doc_id"] for line in (tmp_path / "runs/qg-cli/querygen/train.jsonl").open()} == {
        f"d{i}" for i in range(6)
    }
    if provider.startswith("bedrock"):
        assert len(fake.served) == 6
    if provider == "bedrock-batch":
        assert manifest["stats"]["batch_fallback"]
