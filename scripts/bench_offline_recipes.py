"""Offline training recipes scored on the whole corpus: which pseudo-queries and loss help a dense model.

The grid benchmark (``scripts/bench.py``) runs the real stages; this script is the faster loop used
to choose the offline generator's defaults. It trains all-MiniLM-L6-v2 on offline pseudo-queries
with sentence-transformers and scores every recipe on all judged queries of a BEIR split against
the **full** corpus (no subsampled scoring set), so its numbers compare with published ones.

Steps::

    .venv/bin/python scripts/bench_offline_recipes.py prepare --styles '{"cloze": 1}' --name cloze
    .venv/bin/python scripts/bench_offline_recipes.py run '{"name": "ict-cut-3k", "queries": "cloze", "n": 3000}'
    .venv/bin/python scripts/bench_offline_recipes.py report
    .venv/bin/python scripts/bench_offline_recipes.py passages [--model bench-out/recipes/models/NAME]

``passages`` scores a model (the base one by default; ``run --save`` keeps a recipe's) on all judged queries with
a vector per passage beside each document's, alone and in the hybrid query, through the evaluate stage's own
code (``osft.trainer.passage_vectors``); one line per model goes to ``docs/benchmarks/data/passage-vectors.jsonl``
(default data, split and work folder; else ``<work>/passage-vectors-results.jsonl``).

``prepare`` generates the queries with ``osft.querygen.offline`` and, for each, a BM25 (bm25s,
stemmed with PyStemmer when installed) + base-model hybrid ranking: hard negatives and teacher
scores. ``prepare --judged`` does the same for the judged training queries (a seeded 3/4 of the
split, by query), whose recipes are scored on the other quarter only, and apart on the queries of
that quarter whose relevant documents no training query shares (``unseen_documents``). Recipe keys: ``name``;
``queries`` (a prepared name, or ``judged``); ``n`` pairs; ``kinds`` (offline styles to keep);
``student_misses`` (only queries the hybrid ranks right and the base model does not); ``loss``
(``mnrl``; ``cached-mnrl``, the same with memory bounded by ``mini_batch`` for long documents;
``margin-mse`` against the hybrid teacher, ``label_scale`` x its margins; ``kl`` or ``mnrl+kl``
(``kl_weight``) at ``temperature`` against ``teacher: "cut-hybrid"``, the hybrid teacher scoring
each cloze query against its document with the sentence cut out, over the cut positive and
``candidates`` negatives from its ranks 1-29; ``linear-map``, the base model frozen and only a square
map after it trained, ``steps`` Adam steps of ``batch`` pairs each against all documents, see
``fit_linear_map``);
``crossdoc`` (prepared cloze sentences each paired with the hybrid's first hit among the other
documents, ``confident`` keeping the surest share; see ``crossdoc_rows``);
``pseudo`` with ``queries: "judged"`` (the training part's query texts as a query log, each paired
with the hybrid's first hit instead of its judgement; ``confident`` keeps the share whose first hit
leads the second by most; ``query-log`` writes the same texts for ``osft run``); ``mix`` (e.g.
``{"queries": "cloze", "n": 1000}``, prepared offline pairs added to them);
``anchored`` (only cloze sentences holding a rare term, in at most 3 documents, that the rest of their
document repeats; see ``anchored_rows``); ``negatives`` (one hybrid hard negative per pair;
``negative_source: "dense-without-anchors"`` draws it from the base model's first 30 documents that hold
none of the anchors instead); ``cut_query`` (inverse-cloze pairs train on the
document without their sentence); ``seed`` (which pairs and negatives are drawn; default 13, the
training seed stays 13); ``lr``, ``epochs``, ``batch``; ``train_seq`` (max length while
training; scoring uses ``--max-seq-length``); ``tsdae_steps`` (TSDAE domain adaptation first: that many
steps of ``DenoisingAutoEncoderLoss`` on the corpus's sentences, 60% of their words deleted, batch
``tsdae_batch``, rate ``tsdae_lr``, decoder tied to the encoder; ``n: 0`` scores the adapted model alone).

Where things go. Prepared queries, embedding caches and checkpoints go under ``--work`` (default
``bench-out/recipes/``, git-ignored). Results are appended, one line per recipe, to
``docs/benchmarks/data/recipes.jsonl`` (kept in the repository) when the data is the default
``../shared/data/scifact`` with split ``dev`` and ``--work`` is not given; ``scripts/bench.py --report``
puts their table in ``docs/benchmarks.md`` (section 3). With any other ``--data`` or ``--split``, or
with ``--work DIR``, they go to ``DIR/results.jsonl`` (default ``bench-out/recipes/results.jsonl``),
which ``scripts/bench.py --report`` reads with the same data and split (or ``--out`` the parent of
DIR), so results of other data never mix into the committed SciFact file. Lines with
``reconstructed_from`` were rebuilt from the table of ``docs/benchmarks.md`` after the raw file was
lost: they hold only the fields the table prints.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import re
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact"
DEFAULT_SPLIT = "dev"
DEFAULT_WORK = REPO / "bench-out" / "recipes"
# The recipes behind section 3 of docs/benchmarks.md (default data and split only; see the module docstring).
COMMITTED_RESULTS = REPO / "docs" / "benchmarks" / "data" / "recipes.jsonl"
OUT = DEFAULT_WORK  # the working folder: --work sets it
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
HYBRID_DEPTH = 50
SEED = 13


def load_model(max_len: int):
    from osft.trainer.models import load_sentence_transformer

    return load_sentence_transformer(BASE_MODEL, max_seq_length=max_len, device="cpu")


def load_corpus(data: Path) -> dict[str, dict[str, str]]:
    corpus = {}
    with open(data / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            corpus[str(row["_id"])] = {"id": str(row["_id"]), "title": row.get("title", ""), "text": row["text"]}
    return corpus


def corpus_embeddings(model, corpus: dict[str, dict[str, str]], cache: Path | None = None):
    """Normalized document embeddings in corpus order (cached for the base model)."""
    import torch

    from osft.common.corpus import document_text

    if cache and cache.exists():
        return torch.load(cache)
    texts = [document_text(doc) for doc in corpus.values()]  # type: ignore[arg-type]
    embeddings = model.encode(texts, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(embeddings, cache)
    return embeddings


def base_corpus_embeddings(model, corpus: dict[str, dict[str, str]], data: Path, max_len: int):
    """The base model's document embeddings at ``max_len``, cached per dataset and length under ``--work``."""
    return corpus_embeddings(model, corpus, OUT / f"base-{data.name}-seq{max_len}.pt")


def score(model, corpus, embeddings, data: Path, split: str, only: set[str] | None = None) -> dict[str, float]:
    """nDCG@10, MRR@10 and Recall@100 of the split's judged queries (or ``only`` those) over the whole corpus."""
    import math

    import torch

    from osft.common.beir import read_judged_set

    judged = read_judged_set(data, split)
    ids = list(corpus)
    query_ids = sorted(q for q in judged.queries if only is None or q in only)
    queries = model.encode(
        [judged.queries[q] for q in query_ids], batch_size=64, convert_to_tensor=True, normalize_embeddings=True
    )
    top = torch.topk(queries @ embeddings.T, 100, dim=1).indices.tolist()
    ndcg, mrr, recall = [], [], []
    for row, query_id in enumerate(query_ids):
        relevant = judged.relevant[query_id]
        ranked = [ids[j] for j in top[row]]
        dcg = sum(1 / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]) if doc in relevant)
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(10, len(relevant))))
        ndcg.append(dcg / ideal)
        mrr.append(next((1 / (rank + 1) for rank, doc in enumerate(ranked[:10]) if doc in relevant), 0.0))
        recall.append(len(relevant & set(ranked)) / len(relevant))
    return {
        "ndcg@10": round(100 * sum(ndcg) / len(ndcg), 2),
        "mrr@10": round(100 * sum(mrr) / len(mrr), 2),
        "recall@100": round(100 * sum(recall) / len(recall), 2),
    }


class HybridRanker:
    """Ranks the corpus for a query by base-model cosine + ``HYBRID_BM25_WEIGHT`` x max-normalized BM25."""

    def __init__(self, corpus: dict[str, dict[str, str]], data: Path, max_len: int) -> None:
        import bm25s

        from osft.common.corpus import document_text
        from osft.trainer.hard_negatives import english_stemmer

        self.ids = list(corpus)
        self.model = load_model(max_len)
        self.embeddings = base_corpus_embeddings(self.model, corpus, data, max_len)
        self.stemmer = english_stemmer()
        self.bm25 = bm25s.BM25()
        texts = [document_text(doc) for doc in corpus.values()]  # type: ignore[arg-type]
        self.bm25.index(bm25s.tokenize(texts, stopwords="en", stemmer=self.stemmer, show_progress=False))

    def rank(self, queries: list[str], positives: list[str]) -> list[dict[str, Any]]:
        """For each query: the hybrid top ``HYBRID_DEPTH`` with scores, its positive's score and dense rank."""
        import bm25s
        import numpy as np

        from osft.trainer.hard_negatives import hybrid_scores

        position = {doc_id: i for i, doc_id in enumerate(self.ids)}
        encoded = self.model.encode(queries, batch_size=128, convert_to_tensor=True, normalize_embeddings=True)
        rows = []
        for start in range(0, len(queries), 512):
            dense = (encoded[start : start + 512] @ self.embeddings.T).numpy()
            for offset, query in enumerate(queries[start : start + 512]):
                tokens = bm25s.tokenize(
                    query, stopwords="en", stemmer=self.stemmer, show_progress=False, return_ids=False
                )[0]
                lexical = self.bm25.get_scores(tokens) if tokens else np.zeros(len(self.ids), dtype=np.float32)
                hybrid = hybrid_scores(dense[offset], lexical)
                order = np.argsort(-hybrid)[:HYBRID_DEPTH]
                positive = position[positives[start + offset]]
                rows.append(
                    {
                        "hybrid": {self.ids[j]: float(hybrid[j]) for j in order},
                        "hybrid_positive": float(hybrid[positive]),
                        "dense_rank": int((dense[offset] > dense[offset][positive]).sum()),
                    }
                )
        return rows


def prepare(args: argparse.Namespace) -> None:
    """Queries with hybrid rankings: offline ones for every document, or the judged training queries."""
    from osft.querygen.offline import DocumentFrequencies, OfflineGenerator

    corpus = load_corpus(args.data)
    ranker = HybridRanker(corpus, args.data, args.max_seq_length)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.judged:
        from osft.common.beir import read_judged_set

        judged = read_judged_set(args.data, args.split)
        train_ids, _ = judged_split(args.data, args.split)
        first_relevant = [sorted(judged.relevant[q])[0] for q in train_ids]
        ranked = ranker.rank([judged.queries[q] for q in train_ids], first_relevant)
        by_query = {q: {**r, "relevant": sorted(judged.relevant[q])} for q, r in zip(train_ids, ranked, strict=True)}
        with open(OUT / f"queries-judged-{args.split}.pkl", "wb") as handle:
            pickle.dump(by_query, handle)
        print(f"{len(by_query)} judged training queries ranked")
        return
    docs = list(corpus.values())
    generator = OfflineGenerator(DocumentFrequencies(docs), seed=SEED, styles=json.loads(args.styles))  # type: ignore[arg-type]
    generated = [g for doc in docs for g in generator.generate(doc, args.queries_per_doc)]  # type: ignore[arg-type]
    ranked = ranker.rank([g.query for g in generated], [g.doc_id for g in generated])
    rows = [{"query": g.query, "doc_id": g.doc_id, "kind": g.kind, **r} for g, r in zip(generated, ranked, strict=True)]
    with open(OUT / f"queries-{args.name}.pkl", "wb") as handle:
        pickle.dump(rows, handle)
    first = sum(r["dense_rank"] == 0 for r in rows) / len(rows)
    print(f"{len(rows)} queries ({args.name}); the base model ranks the source document first for {first:.1%}")


def judged_split(data: Path, split: str) -> tuple[list[str], list[str]]:
    """The judged queries split by query, seeded: about 3/4 to train on, the rest to score on (as bench.py)."""
    from osft.common.beir import read_judged_set

    ids = sorted(read_judged_set(data, split).queries)
    random.Random(SEED).shuffle(ids)
    cut = round(len(ids) * 0.75)
    return sorted(ids[:cut]), sorted(ids[cut:])


def unseen_document_queries(data: Path, split: str) -> set[str]:
    """The held-out queries none of whose relevant documents is relevant to a training query.

    A split by query lets a model gain on held-out queries by learning where the training queries'
    documents lie; on these queries it cannot, so their scores show what carries over to new documents.
    """
    from osft.common.beir import read_judged_set

    judged = read_judged_set(data, split)
    train_ids, heldout_ids = judged_split(data, split)
    seen = {doc_id for query_id in train_ids for doc_id in judged.relevant[query_id]}
    return {query_id for query_id in heldout_ids if not judged.relevant[query_id] & seen}


def judged_rows(data: Path, split: str) -> list[dict[str, Any]]:
    """(query, relevant document) pairs of the training part, with hybrid rankings like ``prepare``'s."""
    from osft.common.beir import read_judged_set

    judged = read_judged_set(data, split)
    train_ids, _ = judged_split(data, split)
    with open(OUT / f"queries-judged-{split}.pkl", "rb") as handle:
        hybrid = pickle.load(handle)
    return [
        {**hybrid[query_id], "query": judged.queries[query_id], "doc_id": doc_id, "kind": "judged"}
        for query_id in train_ids
        for doc_id in sorted(judged.relevant[query_id])
    ]


def pseudo_labeled_rows(data: Path, split: str, confident: float = 1.0) -> list[dict[str, Any]]:
    """The training part's query texts only (a query log), each paired with the hybrid's first document.

    No relevance judgement is read: the label is the BM25 + base-model hybrid's top hit, which is
    right for 62% of SciFact's training-part queries (the base model's first hit for 52%).
    ``confident`` keeps that share of the queries, those whose top hit leads the second by most.
    """
    from osft.common.beir import read_judged_set

    judged = read_judged_set(data, split)
    train_ids, _ = judged_split(data, split)
    with open(OUT / f"queries-judged-{split}.pkl", "rb") as handle:
        hybrid = pickle.load(handle)
    rows = []
    for query_id in train_ids:
        ranked = hybrid[query_id]["hybrid"]
        top = next(iter(ranked))
        rows.append(
            {
                "hybrid": ranked,
                "hybrid_positive": ranked[top],
                "relevant": [top],
                "query": judged.queries[query_id],
                "doc_id": top,
                "kind": "log",
            }
        )
    return surest(rows, confident)


def surest(rows: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    """That share of the rows whose hybrid first hit leads its second by most, surest first."""

    def lead(row: dict[str, Any]) -> float:
        scores = list(row["hybrid"].values())
        return scores[0] - scores[1]

    return sorted(rows, key=lead, reverse=True)[: round(len(rows) * share)]


def crossdoc_rows(rows: list[dict[str, Any]], confident: float = 1.0) -> list[dict[str, Any]]:
    """Cloze sentences paired with the hybrid's first hit among the *other* documents (not their own).

    SciFact's claims were written from sentences of citing papers about the cited abstract; a
    sentence of one abstract about another's finding is the closest offline stand-in. ``confident``
    keeps that share of the sentences, those whose first other hit leads the second by most; hard
    negatives come from the following ranks.
    """
    made = []
    for row in rows:
        ranked = {doc_id: value for doc_id, value in row["hybrid"].items() if doc_id != row["doc_id"]}
        ids = list(ranked)
        if len(ids) < 31:
            continue
        made.append(
            {
                "query": row["query"],
                "doc_id": ids[0],
                "kind": "crossdoc",
                "hybrid": ranked,
                "hybrid_positive": ranked[ids[0]],
                "relevant": [ids[0]],
                "dense_rank": 0,
            }
        )
    return surest(made, confident)


ANCHOR_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]")
ANCHOR_MAX_DOCS = 3


def anchor_words(text: str) -> set[str]:
    return {word.lower() for word in ANCHOR_WORD.findall(text)}


def corpus_anchor_words(corpus) -> dict[str, set[str]]:
    """Each document's words as ``anchor_words`` reads them, by id."""
    from osft.common.corpus import document_text

    return {doc_id: anchor_words(document_text(doc)) for doc_id, doc in corpus.items()}


def anchored_rows(rows: list[dict[str, Any]], corpus, words: dict[str, set[str]]) -> list[dict[str, Any]]:
    """Cloze sentences holding a rare term (in at most ``ANCHOR_MAX_DOCS`` documents) that the rest of their
    document repeats: the anchors. The base model misses such queries most (a gene, a trial's acronym) where
    BM25 finds them, so the document, cut, can still be found by its anchors, and not by the sentence's words.
    """
    from osft.common.corpus import document_text

    frequency: Counter[str] = Counter()
    for found in words.values():
        frequency.update(found)
    made = []
    for row in rows:
        rest = anchor_words(document_text(corpus[row["doc_id"]]).replace(row["query"], " "))
        anchors = sorted(
            word
            for word in anchor_words(row["query"])
            if frequency[word] <= ANCHOR_MAX_DOCS and len(word) >= 3 and not word.isdigit() and word in rest
        )
        if anchors:
            made.append({**row, "anchors": anchors})
    return made


def dense_negatives_without_anchors(
    rows: list[dict[str, Any]], corpus, words: dict[str, set[str]], data: Path, max_len: int
) -> None:
    """Per row, ``dense`` negatives: the base model's first 30 other documents that hold none of the row's anchors
    (close in meaning, not in the rare words): negatives that teach the anchors' weight, where hybrid ones,
    sharing the query's words, teach the opposite."""
    import torch

    model = load_model(max_len)
    embeddings = base_corpus_embeddings(model, corpus, data, max_len)
    ids = list(corpus)
    encoded = model.encode(
        [r["query"] for r in rows], batch_size=128, convert_to_tensor=True, normalize_embeddings=True
    )
    top = torch.topk(encoded @ embeddings.T, 200, dim=1).indices.tolist()
    for row, ranked in zip(rows, top, strict=True):
        anchors = set(row["anchors"])
        pool = [ids[j] for j in ranked if ids[j] != row["doc_id"] and not anchors & words[ids[j]]][:30]
        if pool:  # else the hybrid's ranks, as without negative_source
            row["dense"] = pool


def selected_rows(
    config: dict[str, Any], corpus, data: Path, split: str, words: dict[str, set[str]], rng: random.Random
) -> list[dict[str, Any]]:
    """The recipe's (query, doc_id, hybrid ranking) rows: its queries, filtered, shuffled by ``rng``, cut to ``n``."""
    if config["queries"] == "judged" and config.get("pseudo"):
        rows = pseudo_labeled_rows(data, split, config.get("confident", 1.0))
    elif config["queries"] == "judged":
        rows = judged_rows(data, split)
    else:
        with open(OUT / f"queries-{config['queries']}.pkl", "rb") as handle:
            rows = pickle.load(handle)
        if config.get("crossdoc"):
            rows = crossdoc_rows(rows, config.get("confident", 1.0))
        if config.get("anchored"):
            rows = anchored_rows(rows, corpus, words)
    if config.get("mix"):  # e.g. {"queries": "cloze", "n": 1000}: offline pairs beside the log's
        with open(OUT / f"queries-{config['mix']['queries']}.pkl", "rb") as handle:
            offline = pickle.load(handle)
        random.Random(SEED).shuffle(offline)
        rows = rows + offline[: config["mix"]["n"]]
    if config.get("kinds"):
        rows = [r for r in rows if r["kind"] in config["kinds"]]
    if config.get("student_misses"):  # the base model does not rank the source first, the hybrid does
        rows = [r for r in rows if r["dense_rank"] >= 1 and next(iter(r["hybrid"])) == r["doc_id"]]
    rng.shuffle(rows)
    return rows[: config.get("n", len(rows))]


def training_rows(config: dict[str, Any], corpus, data: Path, split: str) -> dict[str, list]:
    from osft.common.corpus import document_text, positive_text

    if config.get("negative_source") == "dense-without-anchors" and not config.get("anchored"):
        raise SystemExit('negative_source "dense-without-anchors" needs "anchored": true')
    words = corpus_anchor_words(corpus) if config.get("anchored") else {}
    rng = random.Random(config.get("seed", SEED))
    rows = selected_rows(config, corpus, data, split, words, rng)
    if config.get("negative_source") == "dense-without-anchors":
        dense_negatives_without_anchors(rows, corpus, words, data, config.get("train_seq", 256))
    loss = config.get("loss", "mnrl")
    columns: dict[str, list] = {"anchor": [], "positive": []}
    if loss == "margin-mse" or config.get("negatives"):
        columns["negative"] = []
    if loss == "margin-mse":
        columns["label"] = []
    for row in rows:
        pair = {
            "query": row["query"],
            "doc_id": row["doc_id"],
            "cut_query": config.get("cut_query") and row["kind"] == "cloze",
        }
        columns["anchor"].append(row["query"])
        columns["positive"].append(positive_text(pair, document_text(corpus[row["doc_id"]])))  # type: ignore[arg-type]
        if "negative" in columns:
            pool = row["dense"] if "dense" in row else list(row["hybrid"])[1:30]
            candidates = [d for d in pool if d not in row.get("relevant", {row["doc_id"]})]
            negative = rng.choice(candidates)
            columns["negative"].append(document_text(corpus[negative]))
            if "label" in columns:
                columns["label"].append(
                    config.get("label_scale", 1.0) * (row["hybrid_positive"] - row["hybrid"][negative])
                )
    return columns


def cut_teacher_columns(rows: list[dict[str, Any]], corpus, data: Path, negatives: int, rng: random.Random):
    """Rows scored by the hybrid teacher with each query's sentence cut from its document for the teacher too.

    Scored against the whole document, the teacher is certain of the source by exact match and its
    margins say nothing about real queries; against the cut document they measure what the rest of
    the abstract shares with the query. Columns: anchor, positive (cut), ``negatives`` drawn from the
    teacher's ranks 1-29, and ``label`` (the teacher's score of each candidate).
    """
    import bm25s
    import numpy as np

    from osft.common.corpus import document_text, positive_text
    from osft.trainer.hard_negatives import hybrid_scores

    ranker = HybridRanker(corpus, data, 256)
    position = {doc_id: i for i, doc_id in enumerate(ranker.ids)}
    texts = [document_text(doc) for doc in corpus.values()]  # type: ignore[arg-type]

    def tokens(items: list[str]) -> list[list[str]]:
        return bm25s.tokenize(items, stopwords="en", stemmer=ranker.stemmer, show_progress=False, return_ids=False)

    corpus_tokens = tokens(texts)
    frequency: dict[str, int] = {}
    for doc in corpus_tokens:
        for token in set(doc):
            frequency[token] = frequency.get(token, 0) + 1
    average_length = sum(map(len, corpus_tokens)) / len(corpus_tokens)

    def bm25(query: list[str], doc: list[str], k1: float = 1.5, b: float = 0.75) -> float:
        """bm25s' ``lucene`` score of one document, outside the index."""
        total = 0.0
        for token in query:
            tf = doc.count(token)
            if tf:
                df = frequency.get(token, 0)
                idf = np.log(1 + (len(corpus_tokens) - df + 0.5) / (df + 0.5))
                total += idf * tf / (tf + k1 * (1 - b + b * len(doc) / average_length))
        return float(total)

    probe = tokens([rows[0]["query"]])[0]
    indexed = float(ranker.bm25.get_scores(probe)[position[rows[0]["doc_id"]]])
    assert abs(bm25(probe, corpus_tokens[position[rows[0]["doc_id"]]]) - indexed) < 1e-3 * max(1.0, indexed)

    cut = [positive_text({"query": r["query"], "doc_id": r["doc_id"], "cut_query": True}, texts[position[r["doc_id"]]])
           for r in rows]  # fmt: skip
    query_emb = ranker.model.encode(
        [r["query"] for r in rows], batch_size=128, convert_to_numpy=True, normalize_embeddings=True
    )
    cut_emb = ranker.model.encode(cut, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
    doc_emb = ranker.embeddings.numpy()
    columns: dict[str, list] = {"anchor": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(negatives)}}
    columns["label"] = []
    teacher_first = student_first = 0
    for i, (row, cut_tokens) in enumerate(zip(rows, tokens(cut), strict=True)):
        source = position[row["doc_id"]]
        query_tokens = tokens([row["query"]])[0]
        lexical = ranker.bm25.get_scores(query_tokens) if query_tokens else np.zeros(len(texts), dtype=np.float32)
        lexical[source] = bm25(query_tokens, cut_tokens)
        dense = doc_emb @ query_emb[i]
        dense[source] = float(cut_emb[i] @ query_emb[i])
        hybrid = hybrid_scores(dense, lexical)
        order = [int(j) for j in np.argsort(-hybrid)[:30]]
        teacher_first += order[0] == source
        student_first += int(np.argmax(dense)) == source
        drawn = rng.sample([j for j in order if j != source][:29], negatives)
        columns["anchor"].append(row["query"])
        columns["positive"].append(cut[i])
        for k, j in enumerate(drawn):
            columns[f"negative_{k + 1}"].append(texts[j])
        columns["label"].append([float(hybrid[source]), *(float(hybrid[j]) for j in drawn)])
    print(
        f"cut queries ranked first: teacher {teacher_first / len(rows):.1%}, base model {student_first / len(rows):.1%}"
    )
    return columns


def pseudo_teacher_columns(rows: list[dict[str, Any]], corpus, negatives: int, rng: random.Random):
    """Log queries with the hybrid's first document as positive, ``negatives`` drawn from its ranks 2-30
    and the hybrid's scores of all of them as ``label``: a soft teacher where the top hit may be wrong."""
    from osft.common.corpus import document_text

    columns: dict[str, list] = {"anchor": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(negatives)}}
    columns["label"] = []
    for row in rows:
        ranked = list(row["hybrid"])
        drawn = rng.sample(ranked[1:30], negatives)
        columns["anchor"].append(row["query"])
        columns["positive"].append(document_text(corpus[ranked[0]]))
        for k, doc_id in enumerate(drawn):
            columns[f"negative_{k + 1}"].append(document_text(corpus[doc_id]))
        columns["label"].append([row["hybrid"][ranked[0]], *(row["hybrid"][d] for d in drawn)])
    return columns


def mnrl_plus_kl(model, temperature: float, kl_weight: float):
    """MNRL (in-batch and hard negatives) plus ``kl_weight`` x KL to the teacher over each row's candidates."""
    from sentence_transformers.sentence_transformer import losses
    from torch import nn

    class MnrlPlusKL(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.mnrl = losses.MultipleNegativesRankingLoss(model)
            self.kl = losses.DistillKLDivLoss(model, temperature=temperature)

        def forward(self, features, labels):
            embeddings = [self.model(f)["sentence_embedding"] for f in features]
            mnrl = self.mnrl.compute_loss_from_embeddings(embeddings, labels)
            return mnrl + kl_weight * self.kl.compute_loss_from_embeddings(embeddings, labels)

    return MnrlPlusKL()


def corpus_sentences(corpus: dict[str, dict[str, str]], max_words: int = 64) -> list[str]:
    """The corpus's sentences of 5 to ``max_words`` words (TSDAE's training text), in corpus order."""
    sentences = []
    for doc in corpus.values():
        for sentence in re.split(r"(?<=[.!?])\s+", doc["text"]):
            if 5 <= len(sentence.split()) <= max_words:
                sentences.append(sentence)
    return sentences


def tsdae_adapt(model, corpus, config: dict[str, Any]) -> tuple[int, float]:
    """TSDAE on the corpus's sentences (deletion noise 0.6): (sentences seen, seconds)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

    from osft.common.model_source import packaged_minilm_path

    rng = random.Random(SEED)
    steps, batch = config["tsdae_steps"], config.get("tsdae_batch", 8)
    sentences = corpus_sentences(corpus)
    rng.shuffle(sentences)
    sentences = (sentences * (1 + steps * batch // len(sentences)))[: steps * batch]

    def damaged(text: str) -> str:
        words = text.split()
        kept = [w for w in words if rng.random() > 0.6]
        return " ".join(kept or [rng.choice(words)])

    dataset = Dataset.from_dict({"damaged": [damaged(t) for t in sentences], "original": sentences})
    decoder = str(packaged_minilm_path() or BASE_MODEL)
    loss = DenoisingAutoEncoderLoss(model, decoder_name_or_path=decoder, tie_encoder_decoder=True)
    arguments = SentenceTransformerTrainingArguments(
        output_dir=str(OUT / "checkpoints" / f"{config['name']}-tsdae"),
        num_train_epochs=1,
        per_device_train_batch_size=batch,
        learning_rate=config.get("tsdae_lr", 3e-5),
        weight_decay=0.0,
        save_strategy="no",
        report_to=[],
        seed=SEED,
    )
    clock = time.perf_counter()
    SentenceTransformerTrainer(model=model, args=arguments, train_dataset=dataset, loss=loss).train()
    return len(sentences), time.perf_counter() - clock


def run(args: argparse.Namespace) -> None:
    """Train one recipe from the base model and score it on the whole corpus."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer import losses

    config = json.loads(args.config)
    corpus = load_corpus(args.data)
    only = set(judged_split(args.data, args.split)[1]) if config["queries"] == "judged" else None
    if config.get("loss") == "linear-map":
        model, tuned_embeddings, pairs, train_seconds = fit_linear_map(config, corpus, args)
        record_scores(args, config, corpus, model, tuned_embeddings, pairs, train_seconds, only)
        return
    if config.get("teacher") == "cut-hybrid":
        with open(OUT / f"queries-{config['queries']}.pkl", "rb") as handle:
            rows = pickle.load(handle)
        if any(row["kind"] != "cloze" for row in rows):
            raise SystemExit("teacher cut-hybrid needs cloze queries (prepare --styles '{\"cloze\": 1}')")
        rng = random.Random(config.get("seed", SEED))
        rng.shuffle(rows)
        columns = cut_teacher_columns(rows[: config["n"]], corpus, args.data, config.get("candidates", 3), rng)
    elif config.get("pseudo") and config.get("loss") in ("kl", "mnrl+kl"):
        rows = pseudo_labeled_rows(args.data, args.split, config.get("confident", 1.0))
        columns = pseudo_teacher_columns(rows, corpus, config.get("candidates", 3), random.Random(SEED))
    else:
        columns = training_rows(config, corpus, args.data, args.split)
    dataset = Dataset.from_dict(columns)
    model = load_model(config.get("train_seq", args.max_seq_length))
    tsdae = {}
    if config.get("tsdae_steps"):
        sentences, seconds = tsdae_adapt(model, corpus, config)
        tsdae = {"tsdae_sentences": sentences, "tsdae_seconds": round(seconds, 1)}
        print(json.dumps({"tsdae_done": config["name"], **tsdae}), flush=True)
    loss_name = config.get("loss", "mnrl")
    if loss_name == "margin-mse":
        loss = losses.MarginMSELoss(model)
    elif loss_name == "kl":
        loss = losses.DistillKLDivLoss(model, temperature=config.get("temperature", 0.05))
    elif loss_name == "mnrl+kl":
        loss = mnrl_plus_kl(model, config.get("temperature", 0.05), config.get("kl_weight", 1.0))
    elif loss_name == "cached-mnrl":  # same gradients as MNRL, memory bounded by the mini-batch (long documents)
        loss = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.get("mini_batch", 8))
    else:
        loss = losses.MultipleNegativesRankingLoss(model)
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(OUT / "checkpoints" / config["name"]),
        num_train_epochs=config.get("epochs", 1),
        per_device_train_batch_size=config.get("batch", 32),
        learning_rate=config.get("lr", 2e-5),
        warmup_ratio=0.1,
        save_strategy="no",
        report_to=[],
        seed=SEED,
        batch_sampler=BatchSamplers.NO_DUPLICATES if "mnrl" in loss_name else BatchSamplers.BATCH_SAMPLER,
    )
    clock = time.perf_counter()
    if len(dataset):
        SentenceTransformerTrainer(model=model, args=training_args, train_dataset=dataset, loss=loss).train()
    train_seconds = time.perf_counter() - clock + tsdae.get("tsdae_seconds", 0.0)
    if args.save:
        model.save(str(OUT / "models" / config["name"]))
    model.max_seq_length = args.max_seq_length
    record_scores(args, config, corpus, model, None, len(dataset), train_seconds, only, tsdae)


def record_scores(
    args: argparse.Namespace,
    config: dict[str, Any],
    corpus,
    model,
    tuned_embeddings,
    pairs: int,
    train_seconds: float,
    only: set[str] | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Score the tuned and the base model on the whole corpus and append the recipe's record to the results."""
    clock = time.perf_counter()
    if tuned_embeddings is None:
        tuned_embeddings = corpus_embeddings(model, corpus)
    tuned = score(model, corpus, tuned_embeddings, args.data, args.split, only)
    base_model = load_model(args.max_seq_length)
    base_embeddings = base_corpus_embeddings(base_model, corpus, args.data, args.max_seq_length)
    base = score(base_model, corpus, base_embeddings, args.data, args.split, only)
    unseen_documents = {}
    if only:
        unseen = unseen_document_queries(args.data, args.split)
        unseen_documents = {
            "unseen_documents": {
                "queries": len(unseen),
                "heldout_queries": len(only),
                "base": score(base_model, corpus, base_embeddings, args.data, args.split, unseen),
                "tuned": score(model, corpus, tuned_embeddings, args.data, args.split, unseen),
            }
        }
    record = {
        "config": config,
        "pairs": pairs,
        "base": base,
        "tuned": tuned,
        "train_seconds": round(train_seconds, 1),
        "score_seq": args.max_seq_length,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "score_seconds": round(time.perf_counter() - clock, 1),
        "scored_queries": "the held-out quarter of the judged queries" if only else "all judged queries",
        "data": str(args.data),
        "split": args.split,
        **(extra or {}),
        **unseen_documents,
    }
    append_record(results_file(args), record)


class LinearMapped:
    """The frozen base model followed by a learned square linear map, re-normalized."""

    def __init__(self, model, weight) -> None:
        self.model, self.weight = model, weight

    def encode(self, texts: list[str], **kwargs: Any):
        import torch

        encoded = self.model.encode(texts, **{**kwargs, "convert_to_tensor": True, "normalize_embeddings": True})
        return torch.nn.functional.normalize(encoded @ self.weight, dim=-1)


def fit_linear_map(config: dict[str, Any], corpus, args: argparse.Namespace):
    """Learn only a linear map after the frozen base model, each query against the whole corpus at once.

    What a frozen encoder can draw from the pairs: with cached document embeddings a step is one
    matrix product, so every pair trains against all documents (softmax at ``temperature``) for
    ``steps`` Adam steps of ``batch`` pairs at ``lr``. Returns (model, corpus embeddings, pairs, seconds).
    """
    import torch

    normalize = torch.nn.functional.normalize
    model = load_model(args.max_seq_length)
    documents = base_corpus_embeddings(model, corpus, args.data, args.max_seq_length)
    rows = selected_rows(config, corpus, args.data, args.split, {}, random.Random(config.get("seed", SEED)))
    position = {doc_id: i for i, doc_id in enumerate(corpus)}
    clock = time.perf_counter()
    queries = model.encode(
        [row["query"] for row in rows], batch_size=128, convert_to_tensor=True, normalize_embeddings=True
    )
    targets = torch.tensor([position[row["doc_id"]] for row in rows])
    weight = torch.eye(documents.shape[1], requires_grad=True)
    optimizer = torch.optim.Adam([weight], lr=config.get("lr", 1e-4))
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(config.get("steps", 100)):
        batch = torch.randperm(len(rows), generator=generator)[: config.get("batch", 2048)]
        logits = normalize(queries[batch] @ weight, dim=-1) @ normalize(documents @ weight, dim=-1).T
        loss = torch.nn.functional.cross_entropy(logits / config.get("temperature", 0.05), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    weight = weight.detach()
    return LinearMapped(model, weight), normalize(documents @ weight, dim=-1), len(rows), time.perf_counter() - clock


def append_record(results: Path, record: dict[str, Any]) -> None:
    """One more JSON line in ``results``, and the same line on stdout."""
    results.parent.mkdir(parents=True, exist_ok=True)
    with open(results, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record))


def results_file(args: argparse.Namespace) -> Path:
    """The committed ``recipes.jsonl`` for the default data and split without ``--work``, else ``<work>/results.jsonl``."""
    if args.work is None and args.data.resolve() == DEFAULT_DATA.resolve() and args.split == DEFAULT_SPLIT:
        return COMMITTED_RESULTS
    return (args.work or DEFAULT_WORK).resolve() / "results.jsonl"


def report_lines(results: Path = COMMITTED_RESULTS) -> list[str]:
    """A markdown table of every recipe recorded in ``results`` (empty when none was run)."""
    if not results.exists() or not results.read_text(encoding="utf-8").strip():
        return []
    lines = [
        "| recipe | queries | pairs | loss | hard negative | cut | lr | epochs | seq train / scored | train s "
        "| scored on | nDCG@10 base → tuned (Δ) | MRR@10 | Recall@100 |",
        "|---|---|---:|---|---|---|---:|---:|---:|---:|---|---|---|---|",
    ]
    with open(results, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            r = json.loads(line)
            c, b, t = r["config"], r["base"], r["tuned"]
            loss = c.get("loss", "mnrl") + (f" (labels x{c['label_scale']:g})" if "label_scale" in c else "")
            negative = "hybrid" if c.get("negatives") or c.get("loss") == "margin-mse" else "-"
            if c.get("negative_source") == "dense-without-anchors":
                negative = "dense, without the anchors"
            if c.get("teacher") == "cut-hybrid":
                loss += (f", KL x{c['kl_weight']:g}" if "kl_weight" in c else "") + " (teacher on cut docs)"
                negative = f"hybrid x{c.get('candidates', 3)}"
            if loss == "linear-map":
                loss = f"linear map on the frozen base, {c.get('steps', 100)} steps x {c.get('batch', 2048):,} pairs"
            if c.get("tsdae_steps"):
                tsdae = f"TSDAE {c['tsdae_steps']:,} steps x {c.get('tsdae_batch', 8)} sentences at {c.get('tsdae_lr', 3e-5):g}"
                loss = f"{tsdae}, then {loss}" if r["pairs"] else tsdae
            scored = "held-out ¼ judged" if r["scored_queries"].startswith("the held-out") else "all judged"
            queries = c["queries"] + (" (student misses)" if c.get("student_misses") else "")
            if c.get("pseudo"):
                share = c.get("confident", 1.0)
                queries = "log, hybrid top hit" + (f" (surest {share:.0%})" if share < 1 else "")
            if c.get("crossdoc"):
                share = c.get("confident", 1.0)
                queries = f"{c['queries']}, first other document" + (f" (surest {share:.0%})" if share < 1 else "")
            if c.get("anchored"):
                queries += ", with a rare term the document repeats"
            if c.get("mix"):
                queries += f" + {c['mix']['n']:,} {c['mix']['queries']}"
            lines.append(
                f"| {c['name']} | {queries} "
                f"| {r['pairs']:,} | {loss} | {negative} | {'yes' if c.get('cut_query') or c.get('teacher') == 'cut-hybrid' else 'no'} "
                f"| {c.get('lr', 2e-5):g} | {c.get('epochs', 1):g} | {c.get('train_seq', 256)} / {r.get('score_seq', 256)} "
                f"| {r['train_seconds']:.0f} "
                f"| {scored} | {b['ndcg@10']:.2f} → **{t['ndcg@10']:.2f}** ({t['ndcg@10'] - b['ndcg@10']:+.2f}) "
                f"| {b['mrr@10']:.2f} → {t['mrr@10']:.2f} | {b['recall@100']:.2f} → {t['recall@100']:.2f} |"
            )
    return lines + unseen_document_lines(results)


def seen_document_ndcg(record: dict[str, Any], side: str) -> float:
    """nDCG@10 of the held-out queries that share a document with training: the mean without the unseen share."""
    unseen = record["unseen_documents"]
    total, unseen_count = unseen["heldout_queries"], unseen["queries"]
    return (total * record[side]["ndcg@10"] - unseen_count * unseen[side]["ndcg@10"]) / (total - unseen_count)


def unseen_document_lines(results: Path) -> list[str]:
    """The held-out-quarter recipes split by whether a training query shares a relevant document."""
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [r for r in records if "unseen_documents" in r]
    if not records:
        return []
    lines = [
        "",
        "The held-out-quarter rows again, their queries split by whether a training query shares a relevant "
        "document (a split by query lets a model learn where those documents lie):",
        "",
        "| recipe | nDCG@10 on the held-out ¼ (Δ) | documents seen in training: queries, nDCG@10 (Δ) "
        "| documents not seen: queries, nDCG@10 (Δ) |",
        "|---|---|---|---|",
    ]
    for r in records:
        unseen = r["unseen_documents"]
        seen_count = unseen["heldout_queries"] - unseen["queries"]
        base, tuned = seen_document_ndcg(r, "base"), seen_document_ndcg(r, "tuned")
        ub, ut = unseen["base"]["ndcg@10"], unseen["tuned"]["ndcg@10"]
        lines.append(
            f"| {r['config']['name']} | {r['base']['ndcg@10']:.2f} → {r['tuned']['ndcg@10']:.2f} "
            f"({r['tuned']['ndcg@10'] - r['base']['ndcg@10']:+.2f}) | {seen_count}: {base:.2f} → {tuned:.2f} "
            f"({tuned - base:+.2f}) | {unseen['queries']}: {ub:.2f} → {ut:.2f} ({ut - ub:+.2f}) |"
        )
    return lines


def query_log(args: argparse.Namespace) -> None:
    """The training part's query texts as a query log (``querygen.query_log``), without their judgements.

    ``osft run`` with this log leaves the logged queries out of evaluation, so the product's own
    run scores on the same held-out quarter as the ``pseudo`` recipes here.
    """
    from osft.common.beir import read_judged_set

    judged = read_judged_set(args.data, args.split)
    train_ids, _ = judged_split(args.data, args.split)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        for query_id in train_ids:
            handle.write(json.dumps({"query": judged.queries[query_id]}) + "\n")
    print(f"{len(train_ids)} of {len(judged.queries)} {args.split} queries written to {args.out}")


def passages(args: argparse.Namespace) -> None:
    """A model scored on all judged queries with a vector per passage beside each document's, and without.

    The product's own scoring (``osft.trainer.passage_vectors``, ``osft.trainer.keyword_baselines``): passages cut
    as OpenSearch's ``text_chunking`` processor cuts them on ``"."``, the ``bool`` query of both vectors, and the
    hybrid of BM25 with either. No training: ``--model`` (default the base model) is scored as it is.
    """
    import resource

    from osft.common.beir import read_judged_set
    from osft.common.corpus import document_text
    from osft.common.hybrid_search import DEFAULT_KEYWORD_WEIGHT
    from osft.trainer.keyword_baselines import KeywordBaselines, dense_hits, hybrid_hits, ranking_metrics
    from osft.trainer.passage_vectors import PassageIndex, passage_metrics

    docs = load_corpus(args.data)
    corpus = {doc_id: document_text(doc) for doc_id, doc in docs.items()}  # type: ignore[arg-type]
    judged = {"judged": read_judged_set(args.data, args.split)}
    clock = time.perf_counter()
    if args.model:
        from osft.trainer.models import load_sentence_transformer

        model = load_sentence_transformer(str(args.model), max_seq_length=args.max_seq_length, device="cpu")
        embeddings = corpus_embeddings(model, docs)
    else:
        model = load_model(args.max_seq_length)
        embeddings = base_corpus_embeddings(model, docs, args.data, args.max_seq_length)
    index = PassageIndex(corpus)
    baselines = KeywordBaselines(corpus, judged)
    whole = dense_hits(model, judged["judged"], embeddings, index.ids, "", 64)
    with_passages = passage_metrics(
        index,
        model,
        judged,
        embeddings,
        query_prefix="",
        document_prefix="",
        batch_size=64,
        show_progress=True,
        bm25=baselines.bm25,
    )
    bm25 = baselines.bm25["judged"]
    record = {
        "model": str(args.model or BASE_MODEL),
        "passages": len(index.passages),
        "documents": len(index.ids),
        "document_vectors": ranking_metrics(judged["judged"], whole),
        "with_passage_vectors": with_passages["dense"]["judged"],
        "hybrid": ranking_metrics(judged["judged"], {q: hybrid_hits(bm25[q], whole[q]) for q in whole}),
        "hybrid_with_passage_vectors": with_passages["hybrid"][DEFAULT_KEYWORD_WEIGHT]["judged"],
        "bm25": ranking_metrics(judged["judged"], bm25),
        "seconds": round(time.perf_counter() - clock, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "data": str(args.data),
        "split": args.split,
    }
    append_record(passage_results_file(args), record)


def passage_results_file(args: argparse.Namespace) -> Path:
    """Beside the recipes' results: the committed file only for the default data, split and work folder."""
    return results_file(args).with_name(
        "passage-vectors.jsonl" if results_file(args) == COMMITTED_RESULTS else "passage-vectors-results.jsonl"
    )


def report(args: argparse.Namespace) -> None:
    print(
        "\n".join(report_lines(results_file(args))) or f"no results yet in {results_file(args)}: run some recipes first"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a BEIR-layout folder")
    parser.add_argument("--split", default=DEFAULT_SPLIT)
    parser.add_argument("--max-seq-length", type=int, default=256, help="max length for scoring")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="prepared queries, caches and checkpoints (default bench-out/recipes/); when given, or with other "
        "--data/--split, results.jsonl goes there too instead of docs/benchmarks/data/recipes.jsonl",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare")
    prep.add_argument("--styles", default='{"cloze": 1}', help="offline style weights, JSON")
    prep.add_argument("--name", default="cloze")
    prep.add_argument("--queries-per-doc", type=int, default=1)
    prep.add_argument("--judged", action="store_true", help="rank the judged training queries instead")
    run_command = commands.add_parser("run")
    run_command.add_argument("config", help="recipe, JSON")
    run_command.add_argument("--save", action="store_true", help="keep the trained model in <work>/models/<name>")
    commands.add_parser("report")
    passage = commands.add_parser("passages", help="score a model with a vector per passage beside each document's")
    passage.add_argument("--model", type=Path, default=None, help="a saved model folder (default: the base model)")
    log = commands.add_parser("query-log", help="write the training part's query texts as a query log")
    log.add_argument("--out", type=Path, default=REPO / "bench-out" / "scifact-query-log.jsonl")
    args = parser.parse_args(argv)
    global OUT
    OUT = (args.work or DEFAULT_WORK).resolve()
    {"prepare": prepare, "run": run, "report": report, "query-log": query_log, "passages": passages}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
