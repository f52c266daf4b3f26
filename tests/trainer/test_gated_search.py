"""The gate compares base and tuned in the search deploy.opensearch builds, when judged queries decide."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from osft.common.beir import JudgedSet
from osft.common.manifests import EvaluateStats
from osft.common.report import render_evaluation
from osft.common.spec import parse_spec
from osft.trainer.evaluate_stage import gate_decision
from osft.trainer.gated_search import MODELS_ALONE, GatedSearch, deployed_search, gated_search

OPENSEARCH = {"connection": {"url": "https://search.example:9200"}, "mode": "local"}


def spec_with(deploy: dict | None = None, **sections):
    document = {"name": "tiny", "source": {"type": "local", "path": "corpus.jsonl"}, **sections}
    return parse_spec(document | ({"deploy": deploy} if deploy is not None else {}))


@pytest.mark.parametrize(
    ("opensearch", "kind", "weight"),
    [
        ({}, "model", None),
        ({"hybrid_search": {}}, "hybrid", 0.5),
        ({"hybrid_search": {"keyword_weight": 0.3}}, "hybrid", 0.3),
        ({"passage_vectors": {}}, "passages", None),
        ({"passage_vectors": {}, "hybrid_search": {"keyword_weight": 0.3}}, "hybrid+passages", 0.3),
    ],
)
def test_the_deployed_search_follows_deploy_opensearch(opensearch: dict, kind: str, weight: float | None) -> None:
    spec = spec_with({"opensearch": {**OPENSEARCH, **opensearch}})
    search = deployed_search(spec)
    assert (search.kind, search.keyword_weight) == (kind, weight)
    assert gated_search(spec, "judged") == (search, [])


def test_without_a_deployed_search_or_when_asked_the_gate_compares_the_models_alone() -> None:
    assert deployed_search(spec_with()) == MODELS_ALONE
    assert deployed_search(spec_with({"sagemaker": {}})) == MODELS_ALONE
    both = {"opensearch": {**OPENSEARCH, "passage_vectors": {}, "hybrid_search": {}}}
    assert gated_search(spec_with(both, evaluation={"decide_on": "model"}), "judged") == (MODELS_ALONE, [])


def test_synthetic_queries_never_gate_a_search_they_flatter() -> None:
    spec = spec_with({"opensearch": {**OPENSEARCH, "passage_vectors": {}}})
    search, (note,) = gated_search(spec, "synthetic-heldout")
    assert search == MODELS_ALONE
    assert "not the models with passage vectors" in note and "evaluation.judged" in note


def test_a_sparse_model_in_a_hybrid_is_gated_alone_and_says_so() -> None:
    spec = spec_with({"opensearch": {**OPENSEARCH, "hybrid_search": {}}}, model={"type": "sparse"})
    search, (note,) = gated_search(spec, "judged")
    assert search == MODELS_ALONE and "sparse models alone" in note


def test_the_gate_can_reject_in_the_deployed_search_a_model_that_wins_alone(tmp_path) -> None:
    """SciFact's case (docs/benchmarks.md): tuned 66.52 against 66.02 alone, 69.31 against 69.60 with passages."""
    spec = spec_with({"opensearch": {**OPENSEARCH, "passage_vectors": {}}})
    ctx = SimpleNamespace(spec=spec, output_path=lambda name: tmp_path / name)
    sets = {"judged": JudgedSet({"q": "claim"}, {"q": {"d"}})}
    alone = {"base": {"judged": {"ndcg@10": 0.6602}}, "tuned": {"judged": {"ndcg@10": 0.6652}}}
    with_passages = {"base": {"ndcg@10": 0.6960}, "tuned": {"ndcg@10": 0.6931}}

    models = gate_decision(ctx, sets, "judged", alone["base"], alone["tuned"], 5183)
    assert models.accepted and models.decided_on == "model"

    search = GatedSearch(passages=True)
    stats = gate_decision(ctx, sets, "judged", alone["base"], alone["tuned"], 5183, {}, search, with_passages)
    assert not stats.accepted
    assert stats.decided_on == "passages" and stats.gain == pytest.approx(-0.0029)
    assert (stats.base, stats.tuned) == (with_passages["base"], with_passages["tuned"])
    assert stats.extra == {"base model alone": {"ndcg@10": 0.6602}, "tuned model alone": {"ndcg@10": 0.6652}}
    assert stats.reason.startswith("in the models with passage vectors, ndcg@10 did not improve")
    gate = json.loads((tmp_path / "gate.json").read_text())
    assert gate == {
        "accepted": False,
        "metric": "ndcg@10",
        "base": 0.696,
        "tuned": 0.6931,
        "decided_by": "judged",
        "decided_on": "passages",
    }
    manifest = SimpleNamespace(stats=EvaluateStats.model_validate(stats.model_dump()))
    assert "compared in the models with passage vectors:" in render_evaluation(manifest)[0]
