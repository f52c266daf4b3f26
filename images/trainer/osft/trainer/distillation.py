"""Distillation labels: a cross-encoder teacher scores (query, positive, negatives).

A cross-encoder reads query and passage together and ranks far better than a bi-encoder, but
is too slow to search with. Its scores become the student's target: MarginMSELoss matches the
score *margins* (positive minus each negative), DistillKLDivLoss matches the score
*distribution* over the candidates. Both accept a ``label`` column holding
``[teacher(q, positive), teacher(q, negative_1), ...]``.

Queries are scored without the student's query prefix: the teacher was trained on raw queries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import CrossEncoder


def add_teacher_scores(
    dataset: Dataset,
    teacher: CrossEncoder,
    *,
    query_prefix: str = "",
    document_prefix: str = "",
    batch_size: int = 32,
    show_progress: bool = False,
) -> Dataset:
    """Return ``dataset`` with a ``label`` column of teacher scores for positive then negatives."""
    text_columns = [c for c in dataset.column_names if c not in ("anchor", "label")]
    queries = [q.removeprefix(query_prefix) for q in dataset["anchor"]]
    pairs = [
        (query, passage.removeprefix(document_prefix))
        for column in text_columns
        for query, passage in zip(queries, dataset[column], strict=True)
    ]
    import torch

    # Raw logits, not sigmoid probabilities: margins between logits carry the teacher's confidence.
    scores = teacher.predict(
        pairs,
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        activation_fn=torch.nn.Identity(),
    )
    rows = len(dataset)
    labels = [[float(scores[c * rows + r]) for c in range(len(text_columns))] for r in range(rows)]
    if "label" in dataset.column_names:
        dataset = dataset.remove_columns("label")
    return dataset.add_column("label", labels)
