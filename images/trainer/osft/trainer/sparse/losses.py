"""The sparse training loss: a ranking or distillation loss inside SpladeLoss's FLOPS regularization."""

from __future__ import annotations

from dataclasses import dataclass

from osft.common.spec import RunSpec

# FLOPS regularization weights by mode: (documents, queries). The bi-encoder values are the
# SPLADE / sentence-transformers defaults; doc-only regularizes documents harder because they
# carry all the expansion, and never queries, which the model does not encode.
REGULARIZER_DEFAULTS: dict[str, tuple[float, float | None]] = {
    "bi-encoder": (3e-5, 5e-5),
    "doc-only": (3e-4, None),
}


@dataclass(frozen=True)
class LossChoice:
    name: str
    document_weight: float
    query_weight: float | None
    reasons: dict[str, str]


def choose_loss(spec: RunSpec, mode: str) -> LossChoice:
    """The inner loss and FLOPS weights, with the reason for each defaulted value."""
    from osft.common.errors import OsftError

    options = spec.training.sparse
    doc_default, query_default = REGULARIZER_DEFAULTS[mode]
    reasons: dict[str, str] = {}
    if mode == "doc-only" and options.query_regularizer_weight is not None:
        raise OsftError(
            "training.sparse.query_regularizer_weight: doc-only models do not encode queries, so it cannot apply",
            hint="remove it, or set model.sparse_mode to 'bi-encoder'",
        )
    document_weight = options.document_regularizer_weight
    if document_weight is None:
        document_weight = doc_default
        reasons["document_regularizer_weight"] = f"{doc_default:g}: the {mode} default FLOPS weight for documents"
    query_weight = options.query_regularizer_weight
    if query_weight is None and query_default is not None:
        query_weight = query_default
        reasons["query_regularizer_weight"] = f"{query_default:g}: the {mode} default FLOPS weight for queries"
    distillation = spec.training.distillation
    name = f"splade+{distillation.loss}" if distillation.enabled else "splade+sparse-mnrl"
    return LossChoice(name=name, document_weight=document_weight, query_weight=query_weight, reasons=reasons)


def build_loss(model, choice: LossChoice, spec: RunSpec, *, gather_across_devices: bool = False):
    """SpladeLoss around SparseMultipleNegativesRankingLoss, or around the distillation loss.

    ``gather_across_devices``: under DDP the ranking loss scores each query against the in-batch
    documents of every process, not only its own (the distillation losses have no in-batch negatives).
    """
    from sentence_transformers.sparse_encoder.losses import (
        SparseDistillKLDivLoss,
        SparseMarginMSELoss,
        SparseMultipleNegativesRankingLoss,
        SpladeLoss,
    )

    distillation = spec.training.distillation
    if not distillation.enabled:
        inner = SparseMultipleNegativesRankingLoss(model, gather_across_devices=gather_across_devices)
    elif distillation.loss == "kl-div":
        inner = SparseDistillKLDivLoss(model)
    else:
        inner = SparseMarginMSELoss(model)
    return SpladeLoss(
        model,
        loss=inner,
        document_regularizer_weight=choice.document_weight,
        query_regularizer_weight=choice.query_weight,
    )
