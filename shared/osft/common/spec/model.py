"""The base model to fine-tune."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from osft.common.spec.base import SpecModel


class ModelSpec(SpecModel):
    """A Hugging Face model id or a local SentenceTransformer folder, and how to use it.

    ``query_prefix``/``document_prefix`` default to the preset of a known model (the BGE query
    instruction, for instance); set them to override.
    """

    base: str = Field(default="sentence-transformers/all-MiniLM-L6-v2", min_length=1)
    type: Literal["dense", "sparse"] = "dense"
    sparse_mode: Literal["bi-encoder", "doc-only"] | None = None
    query_prefix: str | None = None
    document_prefix: str | None = None
    max_seq_length: int | None = Field(default=None, ge=16, le=8192)
    pooling: Literal["mean", "cls", "max", "lasttoken"] | None = Field(
        default=None, description="Pooling of token embeddings; defaults to the model's preset or its saved config."
    )
    normalize: bool | None = Field(
        default=None, description="L2-normalize embeddings; defaults to the model's preset or its saved config."
    )
    output_name: str | None = Field(
        default=None, description="Name for the fine-tuned model; defaults to the run name."
    )

    @model_validator(mode="after")
    def _sparse_mode_only_for_sparse(self) -> ModelSpec:
        if self.sparse_mode is not None and self.type != "sparse":
            raise ValueError("sparse_mode applies only when type is 'sparse'")
        return self
