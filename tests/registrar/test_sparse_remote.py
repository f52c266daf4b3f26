"""The remote path for a doc-only sparse model: token-weight maps through the connector, plus the query tokenizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from osft.common.stage import run_stage
from osft.registrar.sagemaker_deploy import runtime_url
from osft.registrar.stage import STAGE
from osft.trainer.serving.encoder import load_encoder
from osft.trainer.serving.settings import ServeSettings
from tests.registrar.conftest import REGION, build_zip, opensearch_section, sagemaker_section
from tests.serving.conftest import running_server


@pytest.fixture(scope="module")
def tiny_sparse_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A SPLADE SparseEncoder on a 1-layer, 32-wide BERT with the packaged tokenizer (5 MB, random weights)."""
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    root = tmp_path_factory.mktemp("tiny-sparse")
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    model = SparseEncoder(modules=[MLMTransformer(str(root / "bert"), max_seq_length=64), SpladePooling("max")])
    model.save(str(root / "model"))
    return root / "model"


def test_doc_only_sparse_model_registers_remote_encoder_and_local_query_tokenizer(
    aws, run_folder, ml_server, tiny_sparse_dir, minilm_dir
):
    encoder = load_encoder(ServeSettings(model=str(tiny_sparse_dir), device="cpu"))
    with running_server(encoder, ServeSettings(warmup_rounds=1)) as served:
        server = ml_server(connector_urls={runtime_url(REGION, "osft-tiny"): f"{served}/invocations"})
        server.local_embed = lambda _model, texts: [dict.fromkeys(t.lower().split(), 1.0) for t in texts]
        spec, run_dir = run_folder(
            {"sagemaker": sagemaker_section(), "opensearch": opensearch_section(server.url)}, weights=False
        )
        shutil.rmtree(run_dir / "train" / "model")
        shutil.copytree(tiny_sparse_dir, run_dir / "train" / "model")
        record = build_zip(minilm_dir, run_dir / "train" / "exports" / "tiny-sparse-tokenize.zip")
        record.update(function_name="SPARSE_TOKENIZE", model_config=None)
        train = json.loads((run_dir / "train" / "manifest.json").read_text())
        train["stats"].update(model_type="sparse", exports={"sparse_tokenize_zip": record})
        (run_dir / "train" / "manifest.json").write_text(json.dumps(train))
        data = json.loads(spec.read_text())
        spec.write_text(json.dumps({**data, "model": {"type": "sparse", "sparse_mode": "doc-only"}}))

        manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    stats = manifest.stats
    (connector,) = server.calls("POST", "/connectors/_create")
    assert "post_process_function" not in connector["actions"][0]
    assert stats.function_name == "SPARSE_ENCODING"
    assert stats.smoke_test.startswith("passed: 3 texts, sparse, min cosine 1.0")
    tokenizer = server.models[stats.tokenizer_model_id]
    assert (tokenizer["function_name"], tokenizer["model_state"]) == ("SPARSE_TOKENIZE", "DEPLOYED")
    assert tokenizer["name"] == "tiny-tokenizer"
