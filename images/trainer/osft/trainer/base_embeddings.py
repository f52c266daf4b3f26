"""The base model's corpus embeddings, encoded once a run: mining writes them, evaluate reuses them.

Encoding the corpus is the slow part of both hybrid hard-negative mining and scoring the base
model (about 3 minutes each for SciFact's 5,183 abstracts at 256 tokens on two CPU cores). The
train stage writes the embeddings it mined with beside the model, with a key naming the model,
its modules (pooling, normalization, max length) and a digest of the texts in order. The evaluate
stage scores the base model with them only when the key it computes itself is the same, and
encodes afresh otherwise. Corpora whose embeddings would pass ``MAX_SHARED_BYTES`` are not shared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

EMBEDDINGS_FILE = "base-corpus-embeddings.npy"
KEY_FILE = "base-corpus-embeddings.json"
FILES = (EMBEDDINGS_FILE, KEY_FILE)
MAX_SHARED_BYTES = 2 * 1024**3


def texts_digest(texts: Iterable[str], salt: str = "") -> str:
    """SHA-256 of ``salt`` and the texts, in order."""
    digest = hashlib.sha256(salt.encode())
    for text in texts:
        digest.update(b"\0")
        digest.update(text.encode())
    return digest.hexdigest()


def embeddings_key(model_name: str, model: SentenceTransformer, texts: Sequence[str]) -> dict[str, Any]:
    """What must match for stored embeddings to stand for encoding ``texts`` with ``model``."""
    parameter = next(model.parameters())
    return {
        "model": model_name,
        "modules": repr(model),
        "max_seq_length": model.max_seq_length,
        "dtype": str(parameter.dtype),
        "device": parameter.device.type,
        "documents": len(texts),
        "texts_sha256": texts_digest(texts),
    }


def encode_texts(
    model: SentenceTransformer, texts: Sequence[str], *, batch_size: int, show_progress: bool = False
) -> np.ndarray:
    """L2-normalized float32 embeddings of ``texts`` exactly as given.

    ``prompt=""`` keeps out any prompt saved in the model's configuration: the texts already carry
    the query or document prefix (spec ``model.query_prefix``, ``model.document_prefix``), as they do in
    training and as OpenSearch sends them to the deployed model.
    """
    return model.encode(
        list(texts),
        prompt="",
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=show_progress,
    )


def save(folder: Path, key: dict[str, Any], embeddings: np.ndarray) -> list[str]:
    """Write the embeddings and their key into ``folder``; the names written (none past the size limit)."""
    import numpy as np

    if embeddings.nbytes > MAX_SHARED_BYTES:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    (folder / KEY_FILE).unlink(missing_ok=True)  # written last: no key stands beside half-written embeddings
    with (folder / EMBEDDINGS_FILE).open("wb") as handle:
        np.save(handle, embeddings.astype(np.float32, copy=False))
    partial = folder / f"{KEY_FILE}.partial"
    partial.write_text(json.dumps(key, indent=2))
    partial.replace(folder / KEY_FILE)
    return list(FILES)


def load(key_path: Path, fetch_embeddings: Callable[[], Path], key: dict[str, Any]) -> np.ndarray | None:
    """The stored embeddings when the key stored at ``key_path`` equals ``key``, else None.

    ``fetch_embeddings`` gives the embeddings file's local path; it is called only once the keys
    match, so a mismatch costs no download. ``save`` writes the key last, so a key on disk means
    the embeddings beside it were written whole.
    """
    import numpy as np

    try:
        if json.loads(key_path.read_text()) != key:
            return None
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    embeddings = np.load(fetch_embeddings())
    return embeddings if embeddings.shape[0] == key["documents"] else None
