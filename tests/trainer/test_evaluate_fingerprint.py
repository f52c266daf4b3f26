"""What the evaluate stage's fingerprint holds of the deploy section: nothing unless evaluate does more for it."""

from __future__ import annotations

from types import SimpleNamespace

from osft.common.spec import parse_spec
from osft.trainer.evaluate_stage import input_fingerprint

OPENSEARCH = {"connection": {"url": "https://search.example:9200"}, "mode": "local"}


def fingerprint(**sections):
    spec = parse_spec({"name": "tiny", "source": {"type": "local", "path": "corpus.jsonl"}, **sections})
    return input_fingerprint(SimpleNamespace(spec=spec))


def test_runs_that_save_no_base_keep_the_evaluate_fingerprint_they_had() -> None:
    assert fingerprint() is None
    assert fingerprint(deploy={"opensearch": OPENSEARCH}) is None


def test_saving_the_base_and_how_it_is_exported_change_the_evaluate_fingerprint() -> None:
    base = fingerprint(deploy={"opensearch": OPENSEARCH, "when_rejected": "base"})
    assert base is not None and base["base_deploy"]["when_rejected"] == "base"
    zipped = fingerprint(
        deploy={"opensearch": OPENSEARCH, "when_rejected": "base"}, training={"export": {"opensearch_zip": True}}
    )
    assert zipped != base
    assert fingerprint(deploy={"opensearch": OPENSEARCH, "when_rejected": "base", "require_gate": True}) == base


def test_a_hybrid_weight_other_than_the_default_is_scored_so_it_changes_the_fingerprint() -> None:
    def with_weight(weight: float):
        return fingerprint(deploy={"opensearch": {**OPENSEARCH, "hybrid_search": {"keyword_weight": weight}}})

    assert with_weight(0.5) == {"gated_search": "hybrid"}, "the default weight is always scored, not gated"
    assert with_weight(0.3) == {"hybrid_keyword_weight": 0.3, "gated_search": "hybrid"}


def test_the_deployed_search_the_gate_compares_in_changes_the_fingerprint() -> None:
    passages = {"opensearch": {**OPENSEARCH, "passage_vectors": {}}}
    assert fingerprint(deploy=passages) == {"gated_search": "passages"}
    both = {"opensearch": {**OPENSEARCH, "passage_vectors": {}, "hybrid_search": {}}}
    assert fingerprint(deploy=both) == {"gated_search": "hybrid+passages"}
    assert fingerprint(deploy=both, evaluation={"decide_on": "model"}) is None, "the models alone, as before"
