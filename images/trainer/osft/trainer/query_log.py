"""Training pairs from a query log: real user queries paired with the document a hybrid ranks first.

A team's search box logs real queries but no relevance. Each logged query is ranked over the
corpus by BM25 + the base model (``CorpusRanker``, the hard-negative ranking), and its first hit
becomes its positive. The hybrid's first hit is not always right (62% of SciFact's real queries),
so only the queries it is surest of are kept: those whose first hit leads the second by most
(``querygen.query_log.keep_fraction``; the top half were right 87% of the time). A pair whose
first hit is a held-out document is left out by the train stage. Measured on SciFact in
docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from osft.common.jsonl import read_jsonl
from osft.common.spec.querygen import kept_count

if TYPE_CHECKING:
    from osft.common.stage import StageContext
    from osft.trainer.hard_negatives import CorpusRanker

LOG_FILE = "log_queries.jsonl"


def read_log_rows(ctx: StageContext) -> list[dict[str, str]]:
    """The query log querygen passed on (``querygen.query_log``): ``query`` normalized, ``logged`` as read."""
    if not any(record.path.endswith(f"/{LOG_FILE}") for record in ctx.upstream("querygen").outputs):
        return []
    return list(read_jsonl(ctx.input_path(f"querygen/{LOG_FILE}")))


def read_log_queries(ctx: StageContext) -> list[str]:
    return [str(row["query"]) for row in read_log_rows(ctx)]


@dataclass(frozen=True)
class LabeledQuery:
    query: str
    doc_index: int
    lead: float  # the first hit's hybrid score minus the second's


def label_queries(queries: list[str], ranker: CorpusRanker, keep_fraction: float) -> list[LabeledQuery]:
    """The ``keep_fraction`` of ``queries`` whose hybrid first hit leads most, surest first."""
    import numpy as np

    labeled = []
    for query, (_, ranking) in zip(queries, ranker.scores(queries, "hybrid"), strict=True):
        order = np.argsort(-ranking)[:2]
        runner_up = float(ranking[order[1]]) if len(order) > 1 else 0.0
        labeled.append(LabeledQuery(query, int(order[0]), float(ranking[order[0]]) - runner_up))
    labeled.sort(key=lambda item: item.lead, reverse=True)
    return labeled[: kept_count(len(queries), keep_fraction)]
