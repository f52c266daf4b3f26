"""How base and fine-tuned models are compared, and the gate a model must pass to be deployed."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from osft.common.spec.base import SpecModel


class JudgedQueries(SpecModel):
    """Real queries with relevance judgements, in BEIR layout.

    ``path`` is a folder holding ``queries.jsonl`` and ``qrels/<split>.tsv``. Document ids in
    the qrels must be ids of the extracted corpus. Even a few dozen real queries make the
    gate far more trustworthy than synthetic held-out pairs.
    """

    path: str = Field(min_length=1)
    split: str = Field(default="test", min_length=1)
    queries_file: str = "queries.jsonl"


class Evaluation(SpecModel):
    FINGERPRINT_ONLY_WHEN_SET: ClassVar[frozenset[str]] = frozenset({"decide_on"})

    judged: JudgedQueries | None = None
    metric: str = Field(
        default="ndcg@10",
        pattern=r"^(ndcg@10|mrr@10|recall@10|recall@100|map@100)$",
        description="The deciding metric: one of ndcg@10, mrr@10, recall@10, recall@100, map@100.",
    )
    min_gain: float = Field(
        default=0.0, ge=0, description="Tuned must beat base by at least this (absolute, 0-1 scale)."
    )
    decide_on: Literal["search", "model"] = Field(
        default="search",
        description=(
            "What the gate compares. search: base and tuned as deploy.opensearch serves them, in the hybrid query "
            "(hybrid_search) and with passage vectors (passage_vectors), when judged queries decide (synthetic "
            "ones repeat their document's words and flatter BM25 and passages); otherwise the models alone. "
            "model: always the models alone."
        ),
    )
    max_queries: int = Field(
        default=1000, ge=1, description="Evaluate on at most this many held-out synthetic queries."
    )
    batch_size: int = Field(default=64, ge=1)
    keyword_baselines: bool = Field(
        default=True,
        description=(
            "Dense models with judged queries: also score BM25 and a hybrid query of BM25 and the model "
            "(reported). Scored even when false if the gate compares the deployed hybrid query (decide_on)."
        ),
    )
    passage_vectors: bool = Field(
        default=False,
        description=(
            "Dense models with judged queries: also score an index that keeps a vector per sentence beside each "
            "document's (text_chunking on '.', the document's best sentence added to its own score), with the "
            "base and the tuned model, alone and in the hybrid query (reported). Embeds every sentence of the "
            "corpus once per model, a chunk at a time. Scored even when false if the gate compares the deployed "
            "passage vectors (decide_on)."
        ),
    )
