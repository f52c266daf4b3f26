"""WiSE-FT: interpolate between base and tuned weights, with the ratio picked on held-out pairs.

Fine-tuning on a small or noisy synthetic set can overshoot and forget what the base model
knew. Averaging the weights, ``(1 - r) * base + r * tuned``, usually keeps most of the gain and
much of the robustness (Wortsman et al., 2022, "Robust fine-tuning of zero-shot models").
The ratio is chosen on validation pairs held out from training; ratio 0 is the base model
itself, so a bad fine-tune cannot make the result worse than the base on those pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@dataclass(frozen=True)
class MergeChoice:
    ratio: float
    scores: dict[float, float]
    metric: str = "ndcg@10"


def interpolate(model: SentenceTransformer, base_state: dict, tuned_state: dict, ratio: float) -> None:
    """Load ``(1 - ratio) * base + ratio * tuned`` into ``model`` (floating-point tensors only)."""
    mixed = {}
    for key, tuned in tuned_state.items():
        base = base_state.get(key)
        if base is not None and tuned.is_floating_point() and base.shape == tuned.shape:
            mixed[key] = base.lerp(tuned, ratio)
        else:
            mixed[key] = tuned
    model.load_state_dict(mixed)


def choose_ratio(
    model: SentenceTransformer,
    base_state: dict,
    tuned_state: dict,
    ratios: list[float],
    evaluate,
) -> MergeChoice:
    """Try each ratio, keep the best by ``evaluate(model) -> score``; ties go to the smaller ratio.

    Leaves ``model`` holding the chosen interpolation.
    """
    scores: dict[float, float] = {}
    for ratio in sorted(set(ratios)):
        interpolate(model, base_state, tuned_state, ratio)
        scores[ratio] = round(float(evaluate(model)), 6)
    best = max(scores, key=lambda r: (scores[r], -r))
    interpolate(model, base_state, tuned_state, best)
    return MergeChoice(ratio=best, scores=scores)
