"""Builds the training loss the spec asks for.

- ``mnrl``: MultipleNegativesRankingLoss. Each query's positive must outscore every other
  passage in the batch (and its mined hard negatives); bigger batches give more negatives.
- ``cached-mnrl``: the same objective computed with GradCache in ``mini_batch_size`` chunks,
  so a batch of 256+ fits in the memory of a batch of 16, at roughly 20% more compute. Chosen
  automatically on a CPU when an mnrl step would not fit in memory (long documents).
- distillation (``training.distillation``): MarginMSELoss or DistillKLDivLoss against a
  cross-encoder teacher's scores (the dataset carries a ``label`` column of teacher scores).
- ``matryoshka_dims``: MatryoshkaLoss wraps any of the above so that truncated embeddings
  (e.g. the first 128 or 256 dimensions) stay useful.

``gather_across_devices`` shares in-batch negatives across GPUs/hosts under DDP (torchrun or
SageMaker ``instance_count > 1``), so each device sees the whole global batch as negatives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osft.common.errors import SpecError
from osft.common.spec.training import Training
from osft.trainer.defaults import LossChoice

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn


def build_loss(
    model: SentenceTransformer,
    training: Training,
    *,
    gather_across_devices: bool,
    spec_source: str = "spec",
    contrastive: LossChoice | None = None,
) -> tuple[nn.Module, str]:
    """The loss module and a short name for the report (``mnrl``, ``matryoshka(margin-mse)``...).

    ``contrastive`` is the chosen contrastive loss (``defaults.choose_contrastive_loss``); unset, the spec's.
    """
    contrastive = contrastive or LossChoice(training.loss or "mnrl", training.mini_batch_size)
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        DistillKLDivLoss,
        MarginMSELoss,
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )

    distill = training.distillation
    loss: nn.Module
    if distill.enabled:
        if distill.loss == "kl-div":
            loss, name = DistillKLDivLoss(model, temperature=distill.temperature), "kl-div"
        else:
            loss, name = MarginMSELoss(model), "margin-mse"
    elif contrastive.name == "cached-mnrl":
        loss = CachedMultipleNegativesRankingLoss(
            model, mini_batch_size=contrastive.mini_batch_size, gather_across_devices=gather_across_devices
        )
        name = "cached-mnrl"
    else:
        loss, name = MultipleNegativesRankingLoss(model, gather_across_devices=gather_across_devices), "mnrl"

    if training.matryoshka_dims:
        dimension = model.get_embedding_dimension() or 0
        too_big = [d for d in training.matryoshka_dims if d > dimension]
        if too_big:
            raise SpecError(
                spec_source,
                [f"training.matryoshka_dims: {too_big} exceed the model's embedding dimension {dimension}"],
            )
        dims = sorted(set(training.matryoshka_dims) | {dimension}, reverse=True)
        loss, name = MatryoshkaLoss(model, loss, matryoshka_dims=dims), f"matryoshka({name})"
    return loss, name
