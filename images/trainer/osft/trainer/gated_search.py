"""The search the gate compares base and tuned in: the one ``deploy.opensearch`` builds.

Users get the model through a search, not alone. A hybrid query with BM25 or passage vectors can reverse a
comparison of the models alone: on SciFact an offline-tuned model that beat its base alone (66.52 against 66.02
nDCG@10) lost to it with passage vectors (69.31 against 69.60; docs/benchmarks.md). So with
``evaluation.decide_on: "search"`` (the default) the gate compares them in the deployed search. That search is
scored on judged queries only: a synthetic query restates a sentence of its document, which flatters BM25 and a
passage vector alike, so with synthetic queries deciding the gate compares the models alone and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from osft.common.manifests.evaluate import SEARCH_LABELS, DecidedOn
from osft.common.spec import RunSpec


@dataclass(frozen=True)
class GatedSearch:
    keyword_weight: float | None = None
    """The BM25 weight of the deployed hybrid query; None without one."""
    passages: bool = False

    @property
    def kind(self) -> DecidedOn:
        if self.keyword_weight is None:
            return "passages" if self.passages else "model"
        return "hybrid+passages" if self.passages else "hybrid"

    @property
    def label(self) -> str:
        return SEARCH_LABELS[self.kind]


MODELS_ALONE = GatedSearch()


def deployed_search(spec: RunSpec) -> GatedSearch:
    """The search ``deploy.opensearch`` builds around the model."""
    opensearch = spec.deploy.opensearch if spec.deploy is not None else None
    if opensearch is None:
        return MODELS_ALONE
    hybrid = opensearch.hybrid_search
    return GatedSearch(hybrid.keyword_weight if hybrid else None, opensearch.passage_vectors is not None)


def gated_search(spec: RunSpec, deciding: str) -> tuple[GatedSearch, list[str]]:
    """The search the gate compares in, and a note when it cannot be the deployed one."""
    deployed = deployed_search(spec)
    if spec.evaluation.decide_on == "model" or deployed == MODELS_ALONE:
        return MODELS_ALONE, []
    if spec.model.type == "sparse":
        reason = "the evaluate stage scores sparse models alone"
    elif deciding != "judged":
        reason = (
            "synthetic queries restate a sentence of their document, which flatters BM25 and passage vectors; "
            "set evaluation.judged to compare them as served"
        )
    else:
        return deployed, []
    return MODELS_ALONE, [
        f"the gate compared the models alone, not {deployed.label} deploy.opensearch builds: {reason}"
    ]
