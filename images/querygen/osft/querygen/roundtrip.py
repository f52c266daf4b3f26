"""Round-trip consistency: keep a pair only if the base model ranks its document in the top k.

As in Promptagator (Dai et al., 2022, https://arxiv.org/abs/2209.11755): a generated query
whose own document is not among the first ``k`` results of the model being tuned is likely
vague or off-topic. Documents and queries are embedded with ``model.base`` (prefixes from
``model.query_prefix`` / ``model.document_prefix``) and compared by cosine similarity.

Needs sentence-transformers, which the querygen image leaves out to stay small: install the
``roundtrip`` extra (``pip install 'osft-querygen[roundtrip]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from osft.common.corpus import Document, document_text
from osft.common.errors import OsftError
from osft.common.model_source import resolve_model_source
from osft.common.spec.model import ModelSpec
from osft.querygen.offline import GeneratedQuery

QUERY_CHUNK = 1024


def load_encoder(model: ModelSpec, base_dir: Path | None):
    """The base model as a SentenceTransformer, with user-facing errors for the usual problems."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise OsftError(
            "querygen.filters.round_trip_top_k needs sentence-transformers, which this querygen install lacks",
            hint="pip install 'osft-querygen[roundtrip]', or remove round_trip_top_k from the spec",
        ) from None
    source = resolve_model_source(model.base, base_dir)
    try:
        encoder = SentenceTransformer(source, trust_remote_code=False)
    except OSError as exc:
        raise OsftError(
            f"model.base: cannot load '{model.base}' for the round-trip filter ({exc.__class__.__name__})",
            hint="give a local SentenceTransformer folder, or allow Hugging Face hub downloads",
        ) from None
    if model.max_seq_length:
        encoder.max_seq_length = model.max_seq_length
    return encoder


def round_trip_keep(
    queries: Sequence[GeneratedQuery],
    corpus: dict[str, Document],
    model: ModelSpec,
    top_k: int,
    batch_size: int = 64,
    base_dir: Path | None = None,
) -> list[bool]:
    """For each query, whether its document is among the ``top_k`` nearest documents."""
    import torch

    if not queries:
        return []
    encoder = load_encoder(model, base_dir)
    doc_ids = list(corpus)
    position = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    doc_prefix, query_prefix = model.document_prefix or "", model.query_prefix or ""
    docs = encoder.encode(
        [doc_prefix + document_text(corpus[d]) for d in doc_ids],
        batch_size=batch_size,
        convert_to_tensor=True,
        normalize_embeddings=True,
    )
    keep: list[bool] = []
    k = min(top_k, len(doc_ids))
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = queries[start : start + QUERY_CHUNK]
        emb = encoder.encode(
            [query_prefix + q.query for q in chunk],
            batch_size=batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
        )
        scores = emb @ docs.T
        own = torch.tensor([position[q.doc_id] for q in chunk], device=scores.device)
        own_score = scores.gather(1, own.unsqueeze(1))
        # rank = documents scoring strictly higher than the query's own document
        ranks = (scores > own_score).sum(dim=1)
        keep.extend((ranks < k).tolist())
    return keep
