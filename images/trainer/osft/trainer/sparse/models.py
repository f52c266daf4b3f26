"""Choosing, loading and shaping sparse base models for the two modes.

Bi-encoder mode encodes queries and documents with the same SPLADE model (fill-mask
Transformer + SpladePooling). Doc-only mode (inference-free) keeps that model for documents
and weights query tokens from a static table (a ``Router`` with ``SparseStaticEmbedding`` on
the query route), which is what OpenSearch's ``SPARSE_TOKENIZE`` models and analyzers do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from osft.common.errors import OsftError
from osft.common.spec import RunSpec
from osft.common.spec.model import ModelSpec
from osft.trainer.defaults import choose_max_seq_length
from osft.trainer.models import resolve_model_source
from osft.trainer.sparse.home_built import HOME_BUILT_ID, home_built_path

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SparseEncoder

SparseMode = Literal["bi-encoder", "doc-only"]
DEFAULT_MODE: SparseMode = "doc-only"
DEFAULT_BASES: dict[str, str] = {
    "bi-encoder": "opensearch-project/opensearch-neural-sparse-encoding-v2-distill",
    "doc-only": "opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill",
}
MODEL_LIMIT = 512


@dataclass(frozen=True)
class SparseChoice:
    """The sparse mode and base model a run uses, and why each was chosen."""

    mode: SparseMode
    base: str
    reasons: dict[str, str]


def choose_sparse_model(model: ModelSpec) -> SparseChoice:
    """Mode and base for a ``model.type: sparse`` spec.

    ``sparse_mode`` defaults to doc-only, OpenSearch's default neural sparse search mode
    (no model inference at query time). A ``model.base`` left at the dense default becomes
    the OpenSearch sparse model for the mode.
    """
    reasons: dict[str, str] = {}
    mode: SparseMode = model.sparse_mode or DEFAULT_MODE
    if model.sparse_mode is None:
        reasons["sparse_mode"] = f"{mode}: OpenSearch's default neural sparse mode (no model inference per query)"
    base = model.base
    if base == ModelSpec.model_fields["base"].default:
        base = DEFAULT_BASES[mode]
        reasons["base"] = f"{base}: the OpenSearch sparse model for {mode} mode (model.base was the dense default)"
    return SparseChoice(mode=mode, base=base, reasons=reasons)


def resolve_sparse_source(name: str, base_dir: Path | None = None) -> str:
    """A local folder for ``name`` (the home-built id builds it on first use), else the hub id."""
    if name == HOME_BUILT_ID:
        return str(home_built_path())
    return resolve_model_source(name, base_dir)


def load_sparse_encoder(name: str, base_dir: Path | None = None, max_seq_length: int | None = None) -> SparseEncoder:
    """Load a SparseEncoder, with an actionable error when it cannot be found (e.g. offline)."""
    from sentence_transformers import SparseEncoder

    source = resolve_sparse_source(name, base_dir)
    try:
        model = SparseEncoder(source, trust_remote_code=False)
    except OSError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise OsftError(
            f"model.base: cannot load sparse model '{name}' ({exc.__class__.__name__})",
            hint=(
                f"no hub access (HF_HUB_OFFLINE=1): give a local SparseEncoder folder, or '{HOME_BUILT_ID}'"
                if offline
                else "check the model id, or give a local SparseEncoder folder"
            ),
        ) from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def choose_max_seq_length_for(spec: RunSpec, tokenizer, texts: list[str]) -> tuple[int, str | None]:
    """``model.max_seq_length`` when set, else the length covering most of the corpus (the dense rule)."""
    if spec.model.max_seq_length:
        return spec.model.max_seq_length, None
    limit = min(MODEL_LIMIT, tokenizer.model_max_length or MODEL_LIMIT)
    lengths = [len(ids) for ids in tokenizer(texts[:2000], truncation=False)["input_ids"]]
    return choose_max_seq_length(lengths, limit)


def router_of(model: SparseEncoder):
    """The model's Router module when it has one (doc-only models), else None."""
    from sentence_transformers.sparse_encoder.models import Router

    first = model[0]
    return first if isinstance(first, Router) else None


def document_modules(model: SparseEncoder) -> list:
    """The modules that encode documents: the Router's document route, or the whole model."""
    router = router_of(model)
    return list(router.sub_modules["document"]) if router is not None else list(model)


def query_static_embedding(model: SparseEncoder):
    """The SparseStaticEmbedding weighting query tokens in a doc-only model, or None."""
    from sentence_transformers.sparse_encoder.models import SparseStaticEmbedding

    router = router_of(model)
    if router is None or "query" not in router.sub_modules:
        return None
    first = router.sub_modules["query"][0]
    return first if isinstance(first, SparseStaticEmbedding) else None


def corpus_idf(tokenizer, texts: list[str]) -> torch.Tensor:
    """BM25-style IDF per vocabulary token over ``texts``: ``log(1 + (N - df + 0.5) / (df + 0.5))``.

    Always positive, highest for tokens the corpus never uses; special tokens get 0 so they
    never match. Returns a float tensor of the tokenizer's vocabulary size.
    """
    import torch

    vocab_size = len(tokenizer.get_vocab())
    df = torch.zeros(vocab_size, dtype=torch.float64)
    for start in range(0, len(texts), 256):
        encoded = tokenizer(texts[start : start + 256], add_special_tokens=False, truncation=False)["input_ids"]
        for ids in encoded:
            df[torch.tensor(sorted(set(ids)), dtype=torch.long)] += 1
    n = float(len(texts))
    idf = torch.log1p((n - df + 0.5) / (df + 0.5))
    idf[torch.tensor(tokenizer.all_special_ids, dtype=torch.long)] = 0.0
    return idf.float()


def prepare_sparse_model(
    spec: RunSpec, choice: SparseChoice, base_dir: Path, corpus_texts: list[str], max_seq_length: int | None
) -> SparseEncoder:
    """The model training starts from (and the base the evaluation compares against).

    Bi-encoder: the base as loaded (a doc-only base is refused: it cannot encode queries).
    Doc-only: the base's document side with a query route weighted by the corpus IDF
    (``training.sparse.idf_source: corpus``) or the base's own table (``base``).
    """
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.models import Router, SparseStaticEmbedding

    options = spec.training.sparse
    model = load_sparse_encoder(choice.base, base_dir, max_seq_length=max_seq_length)
    static = query_static_embedding(model)
    if choice.mode == "bi-encoder":
        if router_of(model) is not None:
            raise OsftError(
                f"model.base: '{choice.base}' is a doc-only (inference-free) model; it cannot encode queries",
                hint="set model.sparse_mode to 'doc-only', or use a bi-encoder sparse base",
            )
        return model
    if options.idf_source == "base" and static is None:
        raise OsftError(
            f"training.sparse.idf_source: 'base' needs a doc-only base with a query weight table; "
            f"'{choice.base}' has none",
            hint="use idf_source 'corpus' to compute the table from the corpus",
        )
    docs = document_modules(model)
    tokenizer = docs[0].tokenizer
    weight = static.weight.detach().clone() if options.idf_source == "base" else corpus_idf(tokenizer, corpus_texts)
    query = SparseStaticEmbedding(tokenizer=tokenizer, weight=weight, frozen=not options.idf_trainable)
    router = Router.for_query_document(query_modules=[query], document_modules=docs)
    doc_only = SparseEncoder(modules=[router], similarity_fn_name="dot", device=str(model.device))
    if max_seq_length:
        doc_only.max_seq_length = max_seq_length
    return doc_only
