"""Each loss path the spec can choose computes a finite loss and gradients on a tiny batch."""

from __future__ import annotations

import pytest
import torch

from osft.common.errors import SpecError
from osft.common.spec.training import Training
from osft.trainer.defaults import LossChoice
from osft.trainer.losses import build_loss

QUERIES = ["how do bees make honey", "how to fix a flat tyre", "what causes tides", "why do volcanoes erupt"]
POSITIVES = [
    "Bees turn nectar into honey inside the hive.",
    "Patch the inner tube after finding the puncture.",
    "The moon's gravity pulls the oceans twice a day.",
    "Magma rises through the crust and erupts as lava.",
]
NEGATIVES = [
    "Wasps build paper nests.",
    "Cars use tubeless tyres.",
    "Rivers flow to the sea.",
    "Glaciers carve valleys.",
]


def _features(model, texts: list[str]) -> dict[str, torch.Tensor]:
    return model.preprocess(texts)


def _loss_value(model, training: Training, columns: list[list[str]], labels: torch.Tensor | None = None) -> float:
    loss, _ = build_loss(model, training, gather_across_devices=False)
    model.zero_grad()
    value = loss([_features(model, c) for c in columns], labels)
    value.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    return float(value.detach())


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({}, "mnrl"),
        ({"loss": "cached-mnrl", "mini_batch_size": 2}, "cached-mnrl"),
        ({"matryoshka_dims": [64, 128]}, "matryoshka(mnrl)"),
        ({"distillation": {"enabled": True, "loss": "margin-mse"}}, "margin-mse"),
        ({"distillation": {"enabled": True, "loss": "kl-div"}}, "kl-div"),
    ],
)
def test_each_loss_path_trains(minilm_model, options: dict, name: str) -> None:
    training = Training.model_validate(options)
    _, built = build_loss(minilm_model, training, gather_across_devices=False)
    assert built == name
    labels = None
    if training.distillation.enabled:
        labels = torch.tensor([[5.0, -2.0], [4.0, -1.0], [3.0, 0.5], [6.0, -3.0]])
    value = _loss_value(minilm_model, training, [QUERIES, POSITIVES, NEGATIVES], labels)
    assert value == value and value >= 0  # finite, not NaN


def test_in_batch_negatives_are_gathered_across_devices_when_asked(minilm_model) -> None:
    loss, _ = build_loss(minilm_model, Training(), gather_across_devices=True)
    assert loss.gather_across_devices is True


def test_matryoshka_dims_larger_than_the_model_are_a_spec_error(minilm_model) -> None:
    with pytest.raises(SpecError, match=r"training\.matryoshka_dims"):
        build_loss(minilm_model, Training(matryoshka_dims=[1024]), gather_across_devices=False)


def test_a_chosen_contrastive_loss_replaces_the_spec_default(minilm_model) -> None:
    loss, name = build_loss(
        minilm_model, Training(), gather_across_devices=False, contrastive=LossChoice("cached-mnrl", 4)
    )
    assert name == "cached-mnrl" and loss.mini_batch_size == 4
