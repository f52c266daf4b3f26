"""Options for sparse (neural sparse / SPLADE) fine-tuning: ``training.sparse``.

They apply only when ``model.type`` is ``sparse``. Values left unset are chosen for the
sparse mode (``model.sparse_mode``) and recorded in the train manifest with the reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from osft.common.spec.base import SpecModel


class SparseTraining(SpecModel):
    """How a sparse model is trained and exported.

    The FLOPS regularizers push weights to zero: higher weights give sparser vectors (a smaller
    index, faster search) at some cost in relevance. In doc-only mode queries are not encoded by
    the model, so only documents are regularized and ``query_regularizer_weight`` must stay unset.
    """

    document_regularizer_weight: float | None = Field(
        default=None,
        ge=0,
        description="FLOPS weight for documents; default 3e-5 (bi-encoder) or 3e-4 (doc-only).",
    )
    query_regularizer_weight: float | None = Field(
        default=None, ge=0, description="FLOPS weight for queries (bi-encoder only); default 5e-5."
    )
    idf_source: Literal["corpus", "base"] = Field(
        default="corpus",
        description="Doc-only query weights: IDF computed from the extracted corpus, or the base model's own table.",
    )
    idf_trainable: bool = Field(default=False, description="Doc-only: let training adjust the query weight table.")
    idf_learning_rate: float = Field(
        default=1e-3, gt=0, lt=1, description="Learning rate of the query weight table when it is trainable."
    )
    miner_model: str = Field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        min_length=1,
        description="Dense model that mines hard negatives (training.hard_negatives) for the sparse model.",
    )
    prune_ratio: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Export: drop weights below this fraction of each text's largest weight (max_ratio pruning).",
    )
    verify_texts: int = Field(
        default=8, ge=1, le=256, description="Sample texts on which the exported model is checked against PyTorch."
    )
    max_active_dims: int | None = Field(
        default=None, ge=1, description="Evaluation: keep at most this many non-zero weights per vector."
    )
