"""Manifest of the train stage."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from osft.common.manifests.base import StageManifest, StageStats


class TrainStats(StageStats):
    base_model: str
    model_type: str
    model_dir: str = "train/model"
    train_pairs: int = 0
    steps: int = 0
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    chosen_because: dict[str, str] = Field(default_factory=dict, description="Why each defaulted value was chosen.")
    final_loss: float | None = None
    exports: dict[str, Any] = Field(
        default_factory=dict,
        description="Exported artifacts by kind (onnx, onnx_int8, opensearch_torchscript_zip, opensearch_onnx_zip): "
        "path, sha256, bytes, model_format, function_name, model_config and check (min_cosine vs PyTorch, threshold).",
    )


class TrainManifest(StageManifest):
    stage_name: ClassVar[str] = "train"
    stats: TrainStats
