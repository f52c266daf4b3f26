"""Bi-encoder (SPLADE) fine-tuning: one model encodes queries and documents, both FLOPS-regularized."""

from __future__ import annotations


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
    assert [type(m).__name__ for m in model] == ["Transformer", "SpladePooling"]
    query = model.encode_query(["parse a json string"], convert_to_sparse_tensor=False)
    assert query.shape == (1, 30522) and float(query.max()) > 0
