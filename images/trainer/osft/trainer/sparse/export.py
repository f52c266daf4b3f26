"""Export a sparse model for OpenSearch ML Commons, and check the export against PyTorch.

``SPARSE_ENCODING`` zip: a TorchScript model plus ``tokenizer.json``. ML Commons tokenizes one
text with ``tokenizer.json``, calls the model with ``{"input_ids", "attention_mask"}`` and reads
the ``output`` tensor (one weight per vocabulary entry); it turns the non-zero entries into the
``{token: weight}`` map that ingest pipelines store (``SparseEncodingTranslator``). This is the
layout of OpenSearch's pretrained sparse models (opensearch-py-ml ``NeuralSparseModel``).

``SPARSE_TOKENIZE`` zip (doc-only): ``tokenizer.json`` and ``idf.json`` (token → query weight).
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from osft.common.storage import sha256_file
from osft.trainer.sparse.models import document_modules, query_static_embedding

OUTPUT_KEY = "output"
SAMPLE_QUERIES = ("how do I sort a list", "what causes inflammation", "reset a password")


class SparseEncodingModule(torch.nn.Module):
    """SPLADE document encoding as one traceable module: MLM logits → log(1 + relu) → pooled per token.

    Special tokens are zeroed (ML Commons would drop them anyway); with ``prune_ratio`` > 0,
    weights below ``prune_ratio`` × the text's largest weight are zeroed, as the neural sparse
    ingest processor's ``max_ratio`` pruning does.
    """

    def __init__(self, mlm: torch.nn.Module, keep: torch.Tensor, pooling: str, double_log: bool, prune_ratio: float):
        super().__init__()
        self.mlm = mlm
        self.register_buffer("keep", keep)
        self.pooling = pooling
        self.double_log = double_log
        self.prune_ratio = prune_ratio

    def forward(self, input: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mask = input["attention_mask"]
        logits = self.mlm(input_ids=input["input_ids"], attention_mask=mask, return_dict=False)[0]
        values = torch.log1p(torch.relu(logits * mask.unsqueeze(-1).to(logits.dtype)))
        if self.double_log:
            values = torch.log1p(values)
        values = values.max(dim=1)[0] if self.pooling == "max" else values.sum(dim=1)
        values = values * self.keep
        if self.prune_ratio > 0:
            values = prune(values, self.prune_ratio)
        return {OUTPUT_KEY: values}


def prune(values: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero the weights below ``ratio`` × each row's maximum (``max_ratio`` pruning)."""
    threshold = values.max(dim=-1, keepdim=True)[0] * ratio
    return values * (values > threshold)


@dataclass(frozen=True)
class Export:
    """One exported zip: what ``TrainStats.exports[kind]`` records."""

    kind: str
    path: Path
    function_name: str
    model_config: dict[str, Any]

    def record(self, relative_to: Path, stage: str = "train") -> dict[str, Any]:
        return {
            "path": f"{stage}/{self.path.relative_to(relative_to).as_posix()}",
            "sha256": sha256_file(self.path),
            "bytes": self.path.stat().st_size,
            "model_format": "TORCH_SCRIPT",
            "function_name": self.function_name,
            "model_config": self.model_config,
        }


def tokenizer_json(tokenizer, max_length: int) -> str:
    """The fast tokenizer's ``tokenizer.json`` with truncation set, so ML Commons never exceeds the model's length."""
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    data["truncation"] = {"direction": "Right", "max_length": max_length, "strategy": "LongestFirst", "stride": 0}
    data["padding"] = None
    return json.dumps(data, ensure_ascii=False)


def encoding_module(model, prune_ratio: float) -> SparseEncodingModule:
    transformer, pooling = document_modules(model)[:2]
    tokenizer = transformer.tokenizer
    keep = torch.ones(len(tokenizer.get_vocab()))
    keep[torch.tensor(tokenizer.all_special_ids, dtype=torch.long)] = 0.0
    return SparseEncodingModule(
        transformer.auto_model,
        keep,
        pooling=pooling.pooling_strategy,
        double_log=pooling.activation_function == "log1p_relu",
        prune_ratio=prune_ratio,
    ).eval()


def export_sparse_encoding(model, target: Path, name: str, max_length: int, prune_ratio: float) -> Export:
    """Trace the document encoder to TorchScript and zip it with ``tokenizer.json``."""
    transformer = document_modules(model)[0]
    tokenizer = transformer.tokenizer
    module = encoding_module(model, prune_ratio).to("cpu")
    features = tokenizer(
        ["a short text", "a somewhat longer sample text used only to trace the model"],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    example = {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}
    with torch.no_grad():
        traced = torch.jit.trace(module, (example,), strict=False)
    target.mkdir(parents=True, exist_ok=True)
    zip_path = target / f"{name}-sparse-encoding.zip"
    with tempfile.TemporaryDirectory() as tmp:
        pt = Path(tmp) / f"{name}.pt"
        torch.jit.save(traced, str(pt))
        # Stored, not deflated: float weights barely compress and deflating ~100 MB takes seconds.
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.write(pt, arcname=pt.name)
            archive.writestr("tokenizer.json", tokenizer_json(tokenizer, max_length))
    config = transformer.auto_model.config
    model_config = {
        "model_type": config.model_type,
        "embedding_dimension": int(module.keep.numel()),
        "framework_type": "huggingface_transformers",
        "all_config": config.to_json_string(use_diff=False),
    }
    return Export("sparse_encoding_zip", zip_path, "SPARSE_ENCODING", model_config)


def idf_table(model) -> dict[str, float]:
    """The doc-only query weight table as ``{token: weight}`` (every vocabulary token)."""
    static = query_static_embedding(model)
    weights = static.weight.detach().cpu().tolist()
    vocab = static.tokenizer.get_vocab()
    return {token: round(float(weights[i]), 6) for token, i in vocab.items() if i < len(weights)}


def export_sparse_tokenize(model, target: Path, name: str, max_length: int) -> Export:
    """Zip ``tokenizer.json`` and ``idf.json`` for the doc-only query side."""
    static = query_static_embedding(model)
    zip_path = target / f"{name}-sparse-tokenize.zip"
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tokenizer.json", tokenizer_json(static.tokenizer, max_length))
        archive.writestr("idf.json", json.dumps(idf_table(model), ensure_ascii=False))
    return Export("sparse_tokenize_zip", zip_path, "SPARSE_TOKENIZE", {"model_type": "bert"})


def _zip_member(zip_path: Path, suffix: str) -> bytes:
    with zipfile.ZipFile(zip_path) as archive:
        member = next(n for n in archive.namelist() if n.endswith(suffix))
        return archive.read(member)


def _as_map(vector: torch.Tensor, id_to_token: dict[int, str]) -> dict[str, float]:
    ids = torch.nonzero(vector, as_tuple=True)[0].tolist()
    return {id_to_token[i]: float(vector[i]) for i in ids}


def max_map_diff(a: dict[str, float], b: dict[str, float]) -> float:
    """Largest weight difference over the union of tokens (a missing token weighs 0)."""
    return max((abs(a.get(t, 0.0) - b.get(t, 0.0)) for t in set(a) | set(b)), default=0.0)


def verify_sparse_encoding(model, zip_path: Path, texts: list[str], prune_ratio: float) -> float:
    """Max abs weight difference between the zip (run as ML Commons does, one text at a time) and PyTorch."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(_zip_member(zip_path, "tokenizer.json").decode())
    with tempfile.TemporaryDirectory() as tmp:
        pt = Path(tmp) / "model.pt"
        pt.write_bytes(_zip_member(zip_path, ".pt"))
        scripted = torch.jit.load(str(pt), map_location="cpu")
    hf_tokenizer = document_modules(model)[0].tokenizer
    id_to_token = {i: t for t, i in hf_tokenizer.get_vocab().items()}
    keep = encoding_module(model, 0.0).keep
    reference = model.encode_document(texts, convert_to_tensor=True, convert_to_sparse_tensor=False)
    reference = reference.detach().cpu().float() * keep
    if prune_ratio > 0:
        reference = prune(reference, prune_ratio)
    worst = 0.0
    for text, expected in zip(texts, reference, strict=False):
        encoding = tokenizer.encode(text)
        features = {
            "input_ids": torch.tensor([encoding.ids], dtype=torch.long),
            "attention_mask": torch.tensor([encoding.attention_mask], dtype=torch.long),
        }
        with torch.no_grad():
            exported = scripted(features)[OUTPUT_KEY][0]
        worst = max(worst, max_map_diff(_as_map(exported, id_to_token), _as_map(expected, id_to_token)))
    return worst


def verify_sparse_tokenize(model, zip_path: Path, queries: list[str]) -> float:
    """Max abs weight difference between ``idf.json`` lookups (default weight 1) and the model's query vectors."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(_zip_member(zip_path, "tokenizer.json").decode())
    idf = json.loads(_zip_member(zip_path, "idf.json"))
    static = query_static_embedding(model)
    id_to_token = {i: t for t, i in static.tokenizer.get_vocab().items()}
    special = set(static.tokenizer.all_special_tokens)
    reference = model.encode_query(queries, convert_to_tensor=True, convert_to_sparse_tensor=False).cpu().float()
    worst = 0.0
    for query, expected in zip(queries, reference, strict=False):
        tokens = [t for t in tokenizer.encode(query, add_special_tokens=False).tokens if t not in special]
        looked_up = {t: float(idf.get(t, 1.0)) for t in tokens}
        looked_up = {t: w for t, w in looked_up.items() if w != 0}
        worst = max(worst, max_map_diff(looked_up, _as_map(expected, id_to_token)))
    return worst
