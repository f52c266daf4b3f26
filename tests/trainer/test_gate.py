"""The deployment gate: minimum gain, and never below base."""

from __future__ import annotations

from osft.trainer.evaluate_stage import decide as decide_from_evaluate_stage
from osft.trainer.gate import decide


def test_gate_accepts_a_gain_at_or_above_the_minimum() -> None:
    accepted, gain, reason = decide({"ndcg@10": 0.50}, {"ndcg@10": 0.53}, "ndcg@10", 0.02)
    assert accepted and round(gain, 4) == 0.03 and "improved" in reason


def test_gate_rejects_a_gain_below_the_minimum() -> None:
    accepted, _, reason = decide({"ndcg@10": 0.50}, {"ndcg@10": 0.51}, "ndcg@10", 0.02)
    assert not accepted and "below the required" in reason


def test_gate_never_accepts_a_model_below_or_equal_to_base_even_with_zero_minimum() -> None:
    assert not decide({"mrr@10": 0.5}, {"mrr@10": 0.49}, "mrr@10", 0.0)[0]
    assert not decide({"mrr@10": 0.5}, {"mrr@10": 0.5}, "mrr@10", 0.0)[0]


def test_gate_is_importable_from_the_evaluate_stage_for_the_sparse_engineer() -> None:
    assert decide_from_evaluate_stage is decide
