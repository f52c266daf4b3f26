"""Training-free adaptation of the base model's embeddings to a corpus, scored on judged BEIR queries.

Corpus-fitted linear post-processing is the cheapest "domain adaptation" there is: no training,
and it could ship as one Dense layer after pooling. This script measures whether it helps a
contrastively trained model: centering on the corpus mean (fully or half), PCA whitening to k
dimensions, and removing the top principal directions ("all-but-the-top"), each applied to
queries and documents alike and re-normalized.

    .venv/bin/python scripts/bench_embedding_postprocessing.py --data ../shared/data/scifact \\
        --corpus-embeddings runs/scifact-s8/train/base-corpus-embeddings.npy

``--corpus-embeddings`` takes a run's stored base embeddings (corpus.jsonl order, as the train stage
writes them) to skip the ~3 minutes of encoding; without it the corpus is encoded here as
"title text". Figures are printed and written to ``bench-out/embedding-postprocessing.json``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from osft.common.beir import read_judged_set, read_qrels
from osft.common.jsonl import read_jsonl
from osft.common.model_source import resolve_model_source

Transform = Callable[[np.ndarray], np.ndarray]


def ndcg_at_10(scores: np.ndarray, query_ids: list[str], doc_ids: list[str], graded: dict[str, dict[str, float]]):
    total = 0.0
    for row, query_id in zip(scores, query_ids, strict=True):
        top = np.argpartition(-row, 10)[:10]
        top = top[np.argsort(-row[top])]
        gains = graded[query_id]
        dcg = sum(gains.get(doc_ids[j], 0.0) / math.log2(rank + 2) for rank, j in enumerate(top))
        ideal = sum(g / math.log2(rank + 2) for rank, g in enumerate(sorted(gains.values(), reverse=True)[:10]))
        total += dcg / ideal
    return 100 * total / len(query_ids)


def normalized(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def transforms(corpus: np.ndarray) -> dict[str, Transform]:
    mean = corpus.mean(axis=0)
    directions, variances, _ = np.linalg.svd(np.cov((corpus - mean).T))
    found: dict[str, Transform] = {"base": lambda x: x}
    found["center"] = lambda x: x - mean
    found["center x0.5"] = lambda x: x - 0.5 * mean
    for k in (384, 256, 128):
        whitening = directions[:, :k] / np.sqrt(variances[:k])
        found[f"whiten to {k}"] = lambda x, w=whitening: (x - mean) @ w
    for d in (1, 2, 5):
        projection = np.eye(len(mean)) - directions[:, :d] @ directions[:, :d].T
        found[f"all-but-the-top {d}"] = lambda x, p=projection: (x - mean) @ p
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--corpus-embeddings", type=Path, help="stored base embeddings in corpus.jsonl order")
    parser.add_argument("--out", type=Path, default=Path("bench-out/embedding-postprocessing.json"))
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model_source(args.model), device="cpu")
    model.max_seq_length = args.max_seq_length
    documents = list(read_jsonl(args.data / "corpus.jsonl"))
    doc_ids = [str(d["_id"]) for d in documents]
    if args.corpus_embeddings:
        corpus = np.load(args.corpus_embeddings)
        if len(corpus) != len(doc_ids):
            parser.error(f"{args.corpus_embeddings}: {len(corpus)} rows for {len(doc_ids)} documents")
    else:
        texts = [f"{d.get('title', '')} {d['text']}".strip() for d in documents]
        corpus = model.encode(texts, normalize_embeddings=True, batch_size=32, show_progress_bar=True)
    judged = read_judged_set(args.data, args.split)
    relevant = read_qrels(args.data / "qrels" / f"{args.split}.tsv")
    graded = {q: dict.fromkeys(relevant[q], 1.0) for q in judged.queries}
    with open(args.data / "qrels" / f"{args.split}.tsv", encoding="utf-8") as handle:
        for line in handle:
            query_id, doc_id, score = line.rstrip("\n").split("\t")[:3]
            if query_id in graded and doc_id in graded[query_id]:
                graded[query_id][doc_id] = float(score)
    query_ids = list(judged.queries)
    queries = model.encode([judged.queries[q] for q in query_ids], normalize_embeddings=True, batch_size=64)

    results = {}
    for name, transform in transforms(corpus).items():
        scores = normalized(transform(queries)) @ normalized(transform(corpus)).T
        results[name] = round(ndcg_at_10(scores, query_ids, doc_ids, graded), 2)
        print(f"{name:20s} nDCG@10 {results[name]:6.2f}  ({results[name] - results['base']:+.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": str(args.data), "split": args.split, "ndcg@10": results}, indent=2))


if __name__ == "__main__":
    main()
