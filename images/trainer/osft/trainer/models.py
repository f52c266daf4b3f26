"""Finding and loading base models, with per-model presets (prefixes, max length, pooling, normalization).

A preset says how a known model was trained to be used: BGE models pool the [CLS] token and
expect an instruction before queries; gte and MiniLM average the tokens. Values the spec sets
(``model.query_prefix``, ``model.pooling``...) take precedence over the preset, and the preset
over what the model folder says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osft.common.errors import OsftError
from osft.common.model_source import PACKAGED_MINILM_IDS, resolve_model_source
from osft.common.spec.model import ModelSpec

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ModelPreset:
    """How a known model expects to be used.

    ``max_seq_length`` is the most the model supports (its position embeddings); the trainer may
    choose less from the corpus' token lengths. ``size`` (small/base/large) picks the default
    batch size in ``defaults.py``.
    """

    query_prefix: str = ""
    document_prefix: str = ""
    max_seq_length: int = 512
    pooling: str | None = None
    normalize: bool | None = None
    size: str = "base"


PRESETS: dict[str, ModelPreset] = {
    "BAAI/bge-small-en-v1.5": ModelPreset(
        query_prefix=BGE_QUERY_INSTRUCTION, max_seq_length=512, pooling="cls", normalize=True, size="small"
    ),
    "BAAI/bge-base-en-v1.5": ModelPreset(
        query_prefix=BGE_QUERY_INSTRUCTION, max_seq_length=512, pooling="cls", normalize=True, size="base"
    ),
    "BAAI/bge-large-en-v1.5": ModelPreset(
        query_prefix=BGE_QUERY_INSTRUCTION, max_seq_length=512, pooling="cls", normalize=True, size="large"
    ),
    "thenlper/gte-base": ModelPreset(max_seq_length=512, pooling="mean", normalize=True, size="base"),
    MINILM_ID: ModelPreset(max_seq_length=256, pooling="mean", normalize=True, size="small"),
}


@dataclass(frozen=True)
class ModelUsage:
    """The resolved way to use a model in this run: preset, then spec overrides."""

    query_prefix: str
    document_prefix: str
    max_seq_length_limit: int
    pooling: str | None
    normalize: bool | None
    size: str


def preset_for(name: str) -> ModelPreset:
    key = MINILM_ID if name in PACKAGED_MINILM_IDS else name
    return PRESETS.get(key, ModelPreset())


def model_usage(spec: ModelSpec) -> ModelUsage:
    preset = preset_for(spec.base)
    return ModelUsage(
        query_prefix=spec.query_prefix if spec.query_prefix is not None else preset.query_prefix,
        document_prefix=spec.document_prefix if spec.document_prefix is not None else preset.document_prefix,
        max_seq_length_limit=spec.max_seq_length or preset.max_seq_length,
        pooling=spec.pooling or preset.pooling,
        normalize=spec.normalize if spec.normalize is not None else preset.normalize,
        size=preset.size,
    )


def load_sentence_transformer(
    name: str, base_dir: Path | None = None, max_seq_length: int | None = None, **kwargs: Any
) -> SentenceTransformer:
    """Load a SentenceTransformer, with a clear error when it cannot be found offline."""
    from sentence_transformers import SentenceTransformer

    source = resolve_model_source(name, base_dir)
    try:
        model = SentenceTransformer(source, trust_remote_code=False, **kwargs)
    except (OSError, ValueError) as exc:  # ValueError: a folder or config transformers cannot read
        raise _load_error("model.base", name, exc) from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def load_cross_encoder(name: str, base_dir: Path | None = None, max_length: int | None = None):
    """Load a CrossEncoder teacher (``training.distillation.teacher``)."""
    from sentence_transformers import CrossEncoder

    source = resolve_model_source(name, base_dir)
    try:
        return CrossEncoder(source, max_length=max_length, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise _load_error("training.distillation.teacher", name, exc) from None


def _load_error(field: str, name: str, exc: Exception) -> OsftError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    return OsftError(
        f"{field}: cannot load '{name}' ({exc.__class__.__name__}: {(str(exc).splitlines() or [''])[0][:200]})",
        hint="no hub access (HF_HUB_OFFLINE=1): give a local model folder"
        if offline
        else "check the model id, or give a local model folder",
    )


def apply_usage(model: SentenceTransformer, usage: ModelUsage) -> list[str]:
    """Make the model's pooling and normalization match the resolved usage; return what changed.

    A hub checkpoint without sentence-transformers config gets mean pooling by default, which is
    wrong for BGE (trained with [CLS]); the preset corrects it. Returns human-readable changes.
    """
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    changes: list[str] = []
    pooling_index = next((i for i, m in enumerate(model) if isinstance(m, Pooling)), None)
    if usage.pooling and pooling_index is not None:
        current = model[pooling_index]
        if current.pooling_mode != usage.pooling:
            dimension = current.get_embedding_dimension()
            model._modules[str(pooling_index)] = Pooling(dimension, pooling_mode=usage.pooling)
            changes.append(f"pooling {current.pooling_mode} → {usage.pooling}")
    has_normalize = any(isinstance(m, Normalize) for m in model)
    if usage.normalize and not has_normalize:
        model.append(Normalize())
        changes.append("added L2 normalization")
    elif usage.normalize is False and has_normalize:
        for key, module in list(model._modules.items()):
            if isinstance(module, Normalize):
                del model._modules[key]
        changes.append("removed L2 normalization")
    return changes


def pooling_mode(model: SentenceTransformer) -> str:
    """The model's pooling mode as ML Commons names it (MEAN, CLS, MAX)."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    for module in model:
        if isinstance(module, Pooling):
            return str(module.pooling_mode).upper()
    return "MEAN"


def normalizes(model: SentenceTransformer) -> bool:
    from sentence_transformers.sentence_transformer.modules import Normalize

    return any(isinstance(m, Normalize) for m in model)
