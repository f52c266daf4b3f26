"""Training rows for sparse models: (anchor, positive) pairs, optional mined negatives and teacher scores.

Mining and teacher scoring are the dense trainer's (``osft.trainer.hard_negatives`` and
``osft.trainer.distillation``). The miner is a dense model (``training.sparse.miner_model``):
a sparse base that has not been fine-tuned (like the home-built one) ranks too poorly to pick
useful negatives, and dense mining is what the sentence-transformers sparse recipes use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from osft.common.corpus import Pair, positive_text
from osft.common.progress import progress_enabled
from osft.common.spec import RunSpec
from osft.trainer import distillation, hard_negatives
from osft.trainer.models import load_cross_encoder, load_sentence_transformer

if TYPE_CHECKING:
    from datasets import Dataset

QUERY_COLUMN = "anchor"


def pair_dataset(pairs: list[Pair], corpus: dict[str, str]) -> Dataset:
    """``anchor``/``positive`` columns: each pair's query and its document's text (see ``positive_text``)."""
    from datasets import Dataset

    return Dataset.from_dict(
        {QUERY_COLUMN: [p["query"] for p in pairs], "positive": [positive_text(p, corpus[p["doc_id"]]) for p in pairs]}
    )


def mine_negatives(dataset: Dataset, corpus: dict[str, str], spec: RunSpec, base_dir: Path) -> Dataset:
    """Add ``negative_1..n`` columns mined from the corpus (rows without enough candidates are dropped)."""
    miner = load_sentence_transformer(spec.training.sparse.miner_model, base_dir)
    result = hard_negatives.mine(
        dataset,
        miner,
        list(corpus.values()),
        spec.training.hard_negatives,
        batch_size=spec.evaluation.batch_size,
        show_progress=progress_enabled(),
    )
    return result.dataset


def negative_columns(dataset: Dataset) -> list[str]:
    return [c for c in dataset.column_names if c.startswith("negative")]


def add_teacher_scores(dataset: Dataset, spec: RunSpec, base_dir: Path) -> Dataset:
    """Add a ``label`` column: the cross-encoder teacher's scores for [positive, negative_1, ...]."""
    teacher = load_cross_encoder(spec.training.distillation.teacher, base_dir)
    return distillation.add_teacher_scores(
        dataset, teacher, batch_size=spec.evaluation.batch_size, show_progress=progress_enabled()
    )
