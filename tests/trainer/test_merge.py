"""WiSE-FT weight interpolation and the choice of its ratio on held-out pairs."""

from __future__ import annotations

import torch
from torch import nn

from osft.trainer.merge import choose_ratio, interpolate


def _model_and_states() -> tuple[nn.Module, dict, dict]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8))
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tuned = {k: v + 0.1 * torch.randn(v.shape) for k, v in base.items()}
    return model, base, tuned


KEY = "0.weight"


def test_interpolation_ends_are_the_base_and_the_tuned_weights() -> None:
    model, base, tuned = _model_and_states()
    interpolate(model, base, tuned, 0.0)
    assert torch.equal(model.state_dict()[KEY], base[KEY])
    interpolate(model, base, tuned, 1.0)
    assert torch.allclose(model.state_dict()[KEY], tuned[KEY])
    interpolate(model, base, tuned, 0.25)
    assert torch.allclose(model.state_dict()[KEY], base[KEY] + 0.25 * (tuned[KEY] - base[KEY]), atol=1e-6)


def test_the_ratio_with_the_best_held_out_score_wins() -> None:
    model, base, tuned = _model_and_states()
    target = base[KEY] + 0.75 * (tuned[KEY] - base[KEY])

    def closeness(candidate: nn.Module) -> float:  # stands in for ndcg@10 on held-out pairs: best at 0.75
        return -float((candidate.state_dict()[KEY] - target).abs().sum())

    choice = choose_ratio(model, base, tuned, [0.0, 0.25, 0.5, 0.75, 1.0], closeness)
    assert choice.ratio == 0.75 and set(choice.scores) == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert torch.allclose(model.state_dict()[KEY], target, atol=1e-6)


def test_ties_go_to_the_smaller_ratio_so_no_gain_keeps_the_base() -> None:
    model, base, tuned = _model_and_states()
    choice = choose_ratio(model, base, tuned, [1.0, 0.5, 0.0], lambda candidate: 0.9)
    assert choice.ratio == 0.0
    assert torch.equal(model.state_dict()[KEY], base[KEY])
