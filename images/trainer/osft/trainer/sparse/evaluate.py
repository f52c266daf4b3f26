"""Base vs fine-tuned sparse retrieval quality and sparsity: ``evaluate_sparse`` is the evaluate stage for sparse models.

Retrieval metrics come from SparseInformationRetrievalEvaluator (dot product over sparse
vectors, as OpenSearch scores neural sparse queries); sparsity is the mean number of active
(non-zero) dimensions of query and document vectors and the evaluator's FLOPS estimate (the
expected number of multiplications per query-document score). The same gate as for dense
models decides whether later stages deploy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from osft.common.beir import JudgedSet
from osft.common.corpus import document_text, load_corpus
from osft.common.progress import progress_enabled
from osft.common.stage import StageContext, StageResult
from osft.trainer.base_embeddings import texts_digest
from osft.trainer.evaluate_stage import CUTOFFS, GATE_FILE, METRICS_FILE, REPORTED, evaluation_sets, gate_decision
from osft.trainer.gated_search import gated_search
from osft.trainer.html_report import write_report
from osft.trainer.sparse.models import choose_sparse_model, load_sparse_encoder, prepare_sparse_model

SPARSITY = {"query_active_dims", "corpus_active_dims", "avg_flops"}
DENSE_MATMUL_ABOVE = 0.01
"""Score with a dense matmul when both sides have more than this share of non-zero weights."""
CORPUS_CHUNK = 2000
MEMO_BYTES = 2 * 1024**3
"""At most this much of a model's corpus vectors is kept for the next query set."""


def dot_scores(queries, documents):
    """Dot products of two batches of sparse vectors.

    Sparse-sparse products are fast for sparse vectors. An untrained head (like the home-built
    model's) activates nearly the whole vocabulary, though, and then the sparse product is far
    slower than a dense one. So the batches are densified when both are denser than
    ``DENSE_MATMUL_ABOVE``; documents arrive in chunks of ``CORPUS_CHUNK``, which bounds the memory.
    """
    from sentence_transformers import util

    def density(tensor) -> float:
        return tensor._nnz() / max(1, tensor.numel()) if tensor.is_sparse else 1.0

    if density(queries) > DENSE_MATMUL_ABOVE and density(documents) > DENSE_MATMUL_ABOVE:
        dense_q = queries.to_dense() if queries.is_sparse else queries
        dense_d = documents.to_dense() if documents.is_sparse else documents
        return dense_q @ dense_d.T
    return util.dot_score(queries, documents)


class CorpusEncodedOnce:
    """Within its block, ``model.encode_document`` returns a chunk encoded before instead of encoding it again.

    The sparse evaluator has no hook for precomputed corpus vectors (the dense one has), so each
    query set would encode the corpus anew. Kept vectors are bounded by ``budget_bytes`` (an untrained
    head's nearly dense vectors take 20 bytes per non-zero); chunks past it are encoded each time.
    """

    def __init__(self, model, budget_bytes: int = MEMO_BYTES) -> None:
        self.model = model
        self.budget_bytes = budget_bytes
        self.kept: dict[str, object] = {}
        self.kept_bytes = 0
        self.encoded = 0

    def __enter__(self) -> CorpusEncodedOnce:
        self._original = self.model.encode_document
        self._shadowed = "encode_document" in vars(self.model)
        self.model.encode_document = self._encode_document
        return self

    def __exit__(self, *exc_info) -> None:
        if self._shadowed:
            self.model.encode_document = self._original
        else:
            del self.model.encode_document  # the class's method shows through again

    def _encode_document(self, *args, **kwargs):
        texts = args[0] if args else kwargs["inputs"]
        options = (args[1:], sorted((name, value) for name, value in kwargs.items() if name != "inputs"))
        key = texts_digest([texts] if isinstance(texts, str) else map(str, texts), salt=repr(options))
        if key in self.kept:
            return self.kept[key]
        embeddings = self._original(*args, **kwargs)
        self.encoded += 1
        size = _tensor_bytes(embeddings)
        if size is not None and self.kept_bytes + size <= self.budget_bytes:
            self.kept[key] = embeddings
            self.kept_bytes += size
        return embeddings


def _tensor_bytes(embeddings) -> int | None:
    """Memory held by a dense or sparse COO tensor (indices int64 x 2 + float32 value); None for anything else."""
    import torch

    if not isinstance(embeddings, torch.Tensor):
        return None
    if embeddings.is_sparse:
        return embeddings._nnz() * 20
    return embeddings.numel() * embeddings.element_size()


def split_metrics(raw: dict[str, float], name: str) -> tuple[dict[str, float], dict[str, float]]:
    """``{name}_dot_ndcg@10`` → ``ndcg@10`` (retrieval) and ``{name}_query_active_dims`` → sparsity figures."""
    retrieval, sparsity = {}, {}
    for key, value in raw.items():
        short = key.removeprefix(f"{name}_")
        if short in SPARSITY:
            sparsity[short] = round(float(value), 3)
        elif (metric := short.split("_", 1)[-1]) in REPORTED:
            retrieval[metric] = round(float(value), 5)
    return retrieval, sparsity


def score_sparse(model, corpus: dict[str, str], sets: dict[str, JudgedSet], batch_size: int, max_active_dims):
    """Retrieval metrics and sparsity per query set for one model."""
    from sentence_transformers.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator

    retrieval, sparsity = {}, {}
    with CorpusEncodedOnce(model):
        for name, judged in sets.items():
            evaluator = SparseInformationRetrievalEvaluator(
                queries=judged.queries,
                corpus=corpus,
                relevant_docs=judged.relevant,
                **CUTOFFS,
                batch_size=batch_size,
                name=name,
                write_csv=False,
                max_active_dims=max_active_dims,
                show_progress_bar=progress_enabled(),
                corpus_chunk_size=CORPUS_CHUNK,
                score_functions={"dot": dot_scores},
                main_score_function="dot",
            )
            retrieval[name], sparsity[name] = split_metrics(evaluator(model), name)
    return retrieval, sparsity


def evaluate_sparse(ctx: StageContext) -> StageResult:
    """Score the base and the fine-tuned sparse model, apply the gate, write ``metrics.json`` and ``gate.json``."""
    spec, evaluation = ctx.spec, ctx.spec.evaluation
    train = ctx.upstream("train")
    corpus = {doc_id: document_text(doc) for doc_id, doc in load_corpus(ctx).items()}
    sets, deciding, notes = evaluation_sets(ctx, set(corpus))
    notes += gated_search(spec, deciding)[1]
    max_len = train.stats.hyperparameters.get("max_seq_length")
    max_active = spec.training.sparse.max_active_dims

    clock = time.perf_counter()
    choice = choose_sparse_model(spec.model)
    base_model = prepare_sparse_model(spec, choice, Path(ctx.resolve(".")), list(corpus.values()), max_len)
    base, base_sparsity = score_sparse(base_model, corpus, sets, evaluation.batch_size, max_active)
    del base_model
    base_seconds = time.perf_counter() - clock
    tuned_model = load_sparse_encoder(str(ctx.input_path(train.stats.model_dir)), max_seq_length=max_len)
    tuned, tuned_sparsity = score_sparse(tuned_model, corpus, sets, evaluation.batch_size, max_active)
    tuned_seconds = time.perf_counter() - clock - base_seconds

    sparsity = {"sparsity base": base_sparsity[deciding], "sparsity tuned": tuned_sparsity[deciding]}
    stats = gate_decision(ctx, sets, deciding, base, tuned, len(corpus), sparsity)
    metrics = {
        "base": base,
        "tuned": tuned,
        "sparsity": {"base": base_sparsity, "tuned": tuned_sparsity},
        "decided_by": deciding,
        "model_type": "sparse",
        "sparse_mode": choice.mode,
    }
    ctx.output_path(METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    report_files = write_report(
        ctx.workdir,
        title=f"{spec.name} (sparse, {choice.mode})",
        base=base[deciding],
        tuned=tuned[deciding],
        decided_by=deciding,
        accepted=stats.accepted,
        reason=stats.reason,
        extra={name: values for name, values in stats.extra.items() if not name.startswith("sparsity")},
    )
    notes.append(
        "active dims (query/doc): base {:.0f}/{:.0f}, tuned {:.0f}/{:.0f}".format(
            base_sparsity[deciding].get("query_active_dims", 0),
            base_sparsity[deciding].get("corpus_active_dims", 0),
            tuned_sparsity[deciding].get("query_active_dims", 0),
            tuned_sparsity[deciding].get("corpus_active_dims", 0),
        )
    )
    ctx.log.info(
        "evaluation_done",
        decided_by=deciding,
        accepted=stats.accepted,
        gain=round(stats.gain, 4),
        **tuned_sparsity[deciding],
    )
    return StageResult(
        stats=stats,
        outputs=[METRICS_FILE, GATE_FILE, *report_files],
        counts={"queries": len(sets[deciding].queries), "accepted": int(stats.accepted)},
        notes=notes,
        steps={"base": round(base_seconds, 3), "tuned": round(tuned_seconds, 3)},
    )
