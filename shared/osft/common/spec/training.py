"""Fine-tuning options. Values left unset are chosen from the data size and the model (smart defaults)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from osft.common.spec.base import SpecModel


class HardNegatives(SpecModel):
    enabled: bool = False
    num_negatives: int = Field(default=1, ge=1, le=32)
    range_min: int = Field(
        default=10, ge=0, description="Skip this many top-ranked candidates (likely false negatives)."
    )
    range_max: int = Field(default=100, ge=1)
    margin: float = Field(default=0.1, ge=0, description="A negative must score at least this far below the positive.")
    bm25_candidates: bool = False


class Distillation(SpecModel):
    enabled: bool = False
    teacher: str = "cross-encoder/ms-marco-MiniLM-L-6-v2"
    loss: Literal["margin-mse", "kl-div"] = "margin-mse"


class Lora(SpecModel):
    enabled: bool = False
    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)


class WeightMerge(SpecModel):
    """Interpolate between base and tuned weights (WiSE-FT), picking the ratio on held-out pairs."""

    enabled: bool = False
    ratios: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0], min_length=1)


class SageMakerTraining(SpecModel):
    instance_type: str = "ml.g5.xlarge"
    instance_count: int = Field(default=1, ge=1)
    use_spot: bool = False
    max_run_seconds: int = Field(default=86_400, ge=60)
    volume_size_gb: int = Field(default=50, ge=1)


class Export(SpecModel):
    onnx: bool = False
    onnx_int8: bool = False
    opensearch_zip: bool = False


class Training(SpecModel):
    epochs: float | None = Field(default=None, gt=0)
    learning_rate: float | None = Field(default=None, gt=0, lt=1)
    batch_size: int | None = Field(default=None, ge=2)
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1)
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps (overrides epochs).")
    max_train_pairs: int | None = Field(
        default=None, ge=1, description="Subsample training pairs to at most this many."
    )
    loss: Literal["mnrl", "cached-mnrl"] = "mnrl"
    mini_batch_size: int = Field(default=16, ge=1, description="For cached-mnrl: the batch that fits in memory.")
    matryoshka_dims: list[int] | None = None
    hard_negatives: HardNegatives = Field(default_factory=HardNegatives)
    distillation: Distillation = Field(default_factory=Distillation)
    lora: Lora = Field(default_factory=Lora)
    merge: WeightMerge = Field(default_factory=WeightMerge)
    checkpoint_steps: int = Field(default=500, ge=1)
    seed: int = 13
    compute: Literal["local", "sagemaker"] = "local"
    sagemaker: SageMakerTraining = Field(default_factory=SageMakerTraining)
    export: Export = Field(default_factory=Export)
