"""Fine-tuning options. Values left unset are chosen from the data size and the model (smart defaults)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from osft.common.spec.base import SpecModel
from osft.common.spec.sparse import SparseTraining


class HardNegatives(SpecModel):
    enabled: bool | None = Field(
        default=None,
        description="Unset: on when training on your own judged pairs (source type pairs) or with a query log "
        "(querygen.query_log), off for generated queries alone. On SciFact, hybrid negatives raised the gain of "
        "684 judged pairs from +2.9 to +5.6 nDCG@10.",
    )
    num_negatives: int = Field(default=1, ge=1, le=32)
    candidates: Literal["hybrid", "dense", "bm25"] = Field(
        default="hybrid",
        description="Where negatives come from: hybrid = base-model cosine + 0.4 x BM25 scaled by its best score "
        "(a negative is drawn at random, seeded, from the range); dense = the base model's nearest neighbours "
        "(sentence-transformers mine_hard_negatives, best first); bm25 = BM25 (bm25s) ranking, best first.",
    )
    range_min: int = Field(
        default=1, ge=0, description="Skip this many top-ranked candidates (likely false negatives)."
    )
    range_max: int = Field(default=30, ge=1, description="Look no deeper than this rank.")
    margin: float | None = Field(
        default=None,
        ge=0,
        description="A negative's base-model score must be at least this far below the positive's. "
        "Unset: 0.1 for dense and bm25 candidates, none for hybrid (BM25 already disagrees with the base model there).",
    )

    def active(self, provider: str, query_log: bool = False) -> bool:
        """Whether to mine for pairs from ``provider`` (``user-pairs`` for judged pairs), or beside a query log."""
        return self.enabled if self.enabled is not None else provider == "user-pairs" or query_log

    def resolved_margin(self) -> float | None:
        """The margin in force; None (no base-model check) for hybrid candidates unless one is set."""
        if self.margin is not None:
            return self.margin
        return None if self.candidates == "hybrid" else 0.1


class Distillation(SpecModel):
    enabled: bool = False
    teacher: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L-6-v2",
        min_length=1,
        description="A CrossEncoder id or local folder, e.g. BAAI/bge-reranker-base.",
    )
    loss: Literal["margin-mse", "kl-div"] = "margin-mse"
    temperature: float = Field(default=1.0, gt=0, description="For kl-div: softmax temperature of both score sets.")


class Lora(SpecModel):
    enabled: bool = False
    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    target_modules: list[str] | None = Field(
        default=None,
        description="Module names to adapt; defaults to the attention projections peft knows for the model.",
    )


class WeightMerge(SpecModel):
    """Interpolate between base and tuned weights (WiSE-FT), picking the ratio on held-out pairs."""

    enabled: bool = False
    ratios: list[float] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0],
        min_length=1,
        description="Share of the tuned weights to try (0 = base, 1 = tuned); the best on held-out pairs wins.",
    )
    max_queries: int = Field(default=300, ge=1, description="Held-out queries used to pick the ratio.")


class SageMakerTraining(SpecModel):
    instance_type: str = "ml.g5.xlarge"
    instance_count: int = Field(default=1, ge=1)
    use_spot: bool = False
    max_run_seconds: int = Field(default=86_400, ge=60)
    volume_size_gb: int = Field(default=50, ge=1)


class Export(SpecModel):
    """Artifacts written beside the SentenceTransformer folder, each checked against the PyTorch model."""

    onnx: bool = False
    onnx_int8: bool = False
    opensearch_zip: bool = Field(
        default=False, description="ML Commons local-model zips: TorchScript and ONNX, each with tokenizer.json."
    )
    int8_min_cosine: float = Field(
        default=0.98, gt=0, le=1, description="Fail the export when int8 embeddings fall below this cosine to fp32."
    )


class Training(SpecModel):
    FINGERPRINT_ONLY_WHEN_SET = frozenset({"mixed_precision"})

    epochs: float | None = Field(default=None, gt=0)
    learning_rate: float | None = Field(default=None, gt=0, lt=1)
    batch_size: int | None = Field(default=None, ge=2)
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1)
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps (overrides epochs).")
    max_train_pairs: int | None = Field(
        default=None, ge=1, description="Subsample training pairs to at most this many."
    )
    loss: Literal["mnrl", "cached-mnrl"] | None = Field(
        default=None,
        description="Unset: mnrl, or cached-mnrl (the same gradients) when a CPU training step would not fit in memory.",
    )
    mini_batch_size: int = Field(default=16, ge=1, description="For cached-mnrl: the batch that fits in memory.")
    matryoshka_dims: list[int] | None = None
    hard_negatives: HardNegatives = Field(default_factory=HardNegatives)
    distillation: Distillation = Field(default_factory=Distillation)
    lora: Lora = Field(default_factory=Lora)
    merge: WeightMerge = Field(default_factory=WeightMerge)
    checkpoint_steps: int = Field(default=500, ge=1, description="Save a checkpoint every this many steps.")
    gather_across_devices: bool | None = Field(
        default=None, description="Share in-batch negatives across GPUs/hosts; defaults to on when training on several."
    )
    seed: int = 13
    mixed_precision: Literal["auto", "bf16", "fp16", "no"] = Field(
        default="auto",
        description="Half precision while training: auto is bf16 on a GPU that has it (A10G, L4, A100, H100), fp16 "
        "on an older one (T4, V100), and full precision on CPUs, where half precision is slow. fp16 needs a GPU.",
    )
    compute: Literal["local", "sagemaker"] = Field(
        default="local",
        description="Where `osft run` runs the train and evaluate stages: on this machine, or as SageMaker training "
        "jobs on the trainer image (training.sagemaker; needs an s3:// run folder and $OSFT_TRAINER_IMAGE_URI and "
        "$OSFT_SAGEMAKER_ROLE_ARN). The AWS state machine always uses SageMaker.",
    )
    sagemaker: SageMakerTraining = Field(default_factory=SageMakerTraining)
    export: Export = Field(default_factory=Export)
    sparse: SparseTraining = Field(default_factory=SparseTraining)
