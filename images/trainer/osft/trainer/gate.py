"""The deployment gate: a tuned model ships only when it beats its base by the required margin.

Shared by the dense and sparse evaluate stages, so both decide the same way.
"""

from __future__ import annotations


def decide(base: dict[str, float], tuned: dict[str, float], metric: str, min_gain: float) -> tuple[bool, float, str]:
    """(accepted, gain, reason) for ``metric`` (e.g. ``ndcg@10``) on the 0-1 scale.

    Never below base: a gain of zero or less is rejected even when ``min_gain`` is 0.
    """
    gain = tuned[metric] - base[metric]
    if gain <= 0:
        return (
            False,
            gain,
            f"{metric} did not improve ({base[metric]:.4f} → {tuned[metric]:.4f}); keeping the base model",
        )
    if gain < min_gain:
        return False, gain, f"{metric} gain {gain:+.4f} is below the required {min_gain:.4f}"
    return True, gain, f"{metric} improved by {gain:+.4f} ({base[metric]:.4f} → {tuned[metric]:.4f})"
