"""Cleaning and sampling applied by the extract stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from osft.common.spec.base import SpecModel


class Cleaning(SpecModel):
    """Clean-up applied to each document, in this order: HTML, whitespace, length, duplicates, passages."""

    strip_html: bool = False
    normalize_whitespace: bool = True
    min_chars: int = Field(default=40, ge=0, description="Drop documents shorter than this after cleaning.")
    max_passage_tokens: int | None = Field(
        default=None, ge=16, description="Split documents longer than this many tokens into passages."
    )
    max_passages_per_doc: int = Field(default=8, ge=1, description="Passages kept per document; the rest are dropped.")
    long_docs: Literal["split", "truncate"] = Field(
        default="split", description="With max_passage_tokens: split into passages, or keep only the first."
    )
    tokenizer: str | None = Field(
        default=None,
        description="tokenizer.json, a folder holding one, or a Hugging Face model id; defaults to model.base.",
    )
    dedup_exact: bool = True
    dedup_near: bool = False
    near_duplicate_threshold: float = Field(default=0.9, gt=0, le=1, description="Jaccard similarity (MinHash).")
    near_duplicate_num_perm: int = Field(
        default=64, ge=16, le=512, description="MinHash permutations: more is more exact, slower and larger."
    )


class Sampling(SpecModel):
    """A uniform, seeded sample of the cleaned corpus (passages after splitting), kept in O(max_docs) memory."""

    max_docs: int | None = Field(default=None, ge=1, description="Uniform, seeded sample of at most this many docs.")
    seed: int = 13
