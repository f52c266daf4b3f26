"""Distillation: a cross-encoder teacher (built from the packaged MiniLM weights) labels the training rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset

from osft.common.spec.training import Training
from osft.trainer.distillation import add_teacher_scores
from osft.trainer.losses import build_loss
from osft.trainer.models import load_cross_encoder


@pytest.fixture(scope="module")
def teacher(minilm_path: str):
    # No reranker weights offline: a CrossEncoder on the MiniLM encoder (its score head starts random).
    torch.manual_seed(0)
    return load_cross_encoder(minilm_path, max_length=64)


def test_teacher_scores_positive_then_each_negative_without_the_query_prefix(teacher) -> None:
    rows = Dataset.from_dict(
        {
            "anchor": ["query: how do bees make honey", "query: why do tides happen"],
            "positive": ["Bees turn nectar into honey.", "The moon pulls the oceans."],
            "negative_1": ["Wasps build nests.", "Rivers flow to the sea."],
            "negative_2": ["Cars need fuel.", "Glaciers carve valleys."],
        }
    )
    labelled = add_teacher_scores(rows, teacher, query_prefix="query: ")
    labels = np.array(labelled["label"])
    assert labels.shape == (2, 3)
    expected = teacher.predict(
        [("why do tides happen", "Rivers flow to the sea.")], activation_fn=torch.nn.Identity(), convert_to_numpy=True
    )
    assert labels[1, 1] == pytest.approx(float(expected[0]), abs=1e-5)


@pytest.mark.parametrize("loss", ["margin-mse", "kl-div"])
def test_student_loss_accepts_teacher_labels(minilm_model, teacher, loss: str) -> None:
    rows = add_teacher_scores(
        Dataset.from_dict({"anchor": ["bees honey"], "positive": ["Bees make honey."], "negative_1": ["Cars."]}),
        teacher,
    )
    module, _ = build_loss(
        minilm_model,
        Training.model_validate({"distillation": {"enabled": True, "loss": loss}}),
        gather_across_devices=False,
    )
    features = [minilm_model.preprocess(rows[c]) for c in ("anchor", "positive", "negative_1")]
    value = module(features, torch.tensor(rows["label"]))
    assert torch.isfinite(value)
