"""Bi-encoder (SPLADE) fine-tuning: one model encodes queries and documents, both FLOPS-regularized."""

from __future__ import annotations

from osft.common.spec import RunSpec
from osft.trainer.sparse.losses import build_loss, choose_loss


def test_bi_encoder_trains_one_model_for_queries_and_documents(bi_encoder_run):
    stats = bi_encoder_run.manifests["train"].stats
    model = bi_encoder_run.model()

    assert stats.model_type == "sparse" and stats.steps == 2
    assert stats.hyperparameters["sparse_mode"] == "bi-encoder"
    assert stats.hyperparameters["loss"] == "splade+sparse-mnrl"
    assert (
        stats.hyperparameters["document_regularizer_weight"],
        stats.hyperparameters["query_regularizer_weight"],
    ) == (
        3e-5,
        5e-5,
    )
    assert "query_regularizer_weight" in stats.chosen_because
    # One process: in-batch negatives are this process's own (gathered only under torchrun, test_ddp.py).
    assert stats.hyperparameters["world_size"] == 1 and stats.hyperparameters["gather_across_devices"] is False
    assert [type(m).__name__ for m in model] == ["Transformer", "SpladePooling"]
    query = model.encode_query(["parse a json string"], convert_to_sparse_tensor=False)
    assert query.shape == (1, 30522) and float(query.max()) > 0


def test_ranking_loss_gathers_in_batch_documents_across_devices_when_asked(home_built):
    from sentence_transformers import SparseEncoder

    spec = RunSpec.model_validate(
        {"name": "x", "source": {"type": "local", "path": "c.jsonl"}, "model": {"type": "sparse"}}
    )
    model = SparseEncoder(str(home_built), device="cpu")

    for gather in (True, False):
        loss = build_loss(model, choose_loss(spec, "bi-encoder"), spec, gather_across_devices=gather)
        assert loss.loss.gather_across_devices is gather
