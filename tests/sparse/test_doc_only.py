"""Doc-only (inference-free) fine-tuning: documents through the model, queries through a static token table."""

from __future__ import annotations

import json
import zipfile

import pytest

from osft.common.corpus import document_text
from osft.common.errors import OsftError
from osft.common.jsonl import read_jsonl
from osft.common.spec import RunSpec
from osft.trainer.sparse.losses import choose_loss
from osft.trainer.sparse.models import DEFAULT_BASES, choose_sparse_model, corpus_idf, query_static_embedding


def test_doc_only_model_weights_queries_by_corpus_idf(doc_only_run):
    model = doc_only_run.model()
    static = query_static_embedding(model)
    tokenizer = static.tokenizer
    weight = static.weight.detach()
    common, rare = tokenizer.convert_tokens_to_ids(["the", "zebra"])

    assert static.frozen is False  # training.sparse.idf_trainable
    assert float(weight[rare]) > float(weight[common]) > 0
    assert float(weight[tokenizer.cls_token_id]) == 0.0
    query = model.encode_query(["the zebra"], convert_to_sparse_tensor=False)[0]
    assert int((query != 0).sum()) == 2


def test_trainable_idf_table_is_updated_by_the_query_column(doc_only_run):
    """Queries must reach the static table during training: a trainable table moves away from the corpus IDF."""
    texts = [
        document_text(doc)
        for shard in doc_only_run.path("extract").glob("docs-*.jsonl.gz")
        for doc in read_jsonl(shard)
    ]
    static = query_static_embedding(doc_only_run.model())
    initial = corpus_idf(static.tokenizer, texts)

    changed = (static.weight.detach() - initial).abs() > 1e-6

    assert 0 < int(changed.sum()) < 1000  # only tokens of the training queries moved


def test_doc_only_trains_on_mined_negatives_with_teacher_margins(doc_only_run):
    stats = doc_only_run.manifests["train"].stats

    assert stats.hyperparameters["sparse_mode"] == "doc-only"
    assert stats.hyperparameters["loss"] == "splade+margin-mse"
    assert stats.hyperparameters["hard_negatives"] == 1
    assert stats.hyperparameters["query_regularizer_weight"] is None
    assert stats.hyperparameters["document_regularizer_weight"] == 3e-4


def test_doc_only_exports_a_sparse_tokenize_zip_matching_the_query_side(doc_only_run):
    record = doc_only_run.export("sparse_tokenize_zip")

    with zipfile.ZipFile(doc_only_run.path(record["path"].removeprefix("train/").join(["train/", ""]))) as archive:
        assert sorted(archive.namelist()) == ["idf.json", "tokenizer.json"]
        idf = json.loads(archive.read("idf.json"))
    assert record["function_name"] == "SPARSE_TOKENIZE"
    assert idf["zebra"] > idf["the"]
    assert record["max_abs_diff"] < 1e-5


def test_doc_only_refuses_a_query_regularizer():
    spec = RunSpec.model_validate(
        {
            "name": "x",
            "source": {"type": "local", "path": "c.jsonl"},
            "model": {"type": "sparse", "sparse_mode": "doc-only"},
            "training": {"sparse": {"query_regularizer_weight": 1e-4}},
        }
    )

    with pytest.raises(OsftError, match="query_regularizer_weight"):
        choose_loss(spec, "doc-only")


@pytest.mark.parametrize("mode", ["bi-encoder", "doc-only"])
def test_dense_default_base_becomes_the_opensearch_sparse_model_for_the_mode(mode):
    spec = RunSpec.model_validate(
        {"name": "x", "source": {"type": "local", "path": "c.jsonl"}, "model": {"type": "sparse", "sparse_mode": mode}}
    )

    choice = choose_sparse_model(spec.model)

    assert choice.base == DEFAULT_BASES[mode] and choice.mode == mode
    assert "base" in choice.reasons
