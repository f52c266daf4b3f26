"""Training progress as structured log events instead of the HF trainer's printed dicts.

The HF trainer prints ``{'loss': 0.41, ...}`` lines through ``PrinterCallback`` when progress
bars are off (always, in containers). ``StructlogCallback`` replaces it with ``train_progress``
events whose keys (``train_loss=``/``"train_loss":``) are what SageMaker metric definitions
match (see ``SAGEMAKER_METRIC_DEFINITIONS``), so container logs stay JSON lines.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

# One regex per metric, matching both the JSON form ("train_loss": 0.41) and the console form (train_loss=0.41).
SAGEMAKER_METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": "train:loss", "Regex": r"train_loss\"?[:=] ?([-+0-9.eE]+)"},
    {"Name": "train:learning_rate", "Regex": r"learning_rate\"?[:=] ?([-+0-9.eE]+)"},
    {"Name": "train:epoch", "Regex": r"train_epoch\"?[:=] ?([-+0-9.eE]+)"},
    {"Name": "eval:base_ndcg@10", "Regex": r"base_ndcg_at_10\"?[:=] ?([-+0-9.eE]+)"},
    {"Name": "eval:tuned_ndcg@10", "Regex": r"tuned_ndcg_at_10\"?[:=] ?([-+0-9.eE]+)"},
]


class StructlogCallback(TrainerCallback):
    """Logs each HF trainer log step as a ``train_progress`` event on the stage's logger."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        fields: dict[str, Any] = {"step": state.global_step, "max_steps": state.max_steps}
        fields["train_epoch"] = round(float(state.epoch or 0), 4)
        for key, value in logs.items():
            name = {"loss": "train_loss", "epoch": None}.get(key, key)
            if name and isinstance(value, (int, float)):
                fields[name] = round(float(value), 6)
        self.log.info("train_progress", **fields)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.log.info("checkpoint_saved", step=state.global_step, folder=args.output_dir)


def metric_fields(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    """``{"ndcg@10": 0.5}`` → ``{"<prefix>_ndcg_at_10": 0.5}``: log keys a metric regex can match."""
    return {f"{prefix}_{k.replace('@', '_at_')}": v for k, v in metrics.items()}
