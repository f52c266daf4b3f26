"""Exports of the fine-tuned model for OpenSearch, each checked against the PyTorch model.

Written to ``train/exports/``:

- ``model.onnx``: the transformer in ONNX (sentence-transformers' export via optimum); its
  output is the token embeddings, pooling and normalization happen in the caller (ML Commons
  does them from ``model_config``);
- ``model_int8.onnx``: the same, dynamically quantized to int8 (``export_dynamic_quantized_onnx_model``);
- ``<name>-torchscript.zip``: ML Commons local model, TorchScript ``.pt`` of the whole
  SentenceTransformer (pooling and normalization inside) + ``tokenizer.json``;
- ``<name>-onnx.zip``: ML Commons local model, ``model.onnx`` + ``tokenizer.json``.

Each record in ``TrainStats.exports`` carries the path, SHA-256, size, ``model_format``,
``function_name`` and ``model_config``: what ``POST /_plugins/_ml/models/_register`` needs.
Each export is run on sample texts the way its consumer runs it (the zips through their own
``tokenizer.json``) and compared with ``SentenceTransformer.encode``: fp32 exports must reach
cosine ``FP32_MIN_COSINE``; int8 must reach ``training.export.int8_min_cosine``.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from osft.common.errors import OsftError
from osft.common.spec.training import Export
from osft.common.storage import sha256_file
from osft.trainer.models import normalizes, pooling_mode

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

FP32_MIN_COSINE = 0.999
SAMPLE_TEXTS = (
    "how do I reset my password",
    "OpenSearch supports k-NN search on dense vectors.",
    "The quick brown fox jumps over the lazy dog, again and again, until the dog finally wakes up.",
    "Résumé of café opening hours",
    "a",
)
EXPORTS_DIR = "exports"


class ExportCheckError(OsftError):
    """An export's embeddings differ from the PyTorch model's beyond the allowed tolerance."""


def model_config(model: SentenceTransformer, framework_type: str) -> dict[str, Any]:
    """ML Commons ``model_config`` for a TEXT_EMBEDDING model."""
    hf_config = model.transformers_model.config
    return {
        "model_type": hf_config.model_type,
        "embedding_dimension": model.get_embedding_dimension(),
        "framework_type": framework_type,
        "pooling_mode": pooling_mode(model),
        "normalize_result": normalizes(model),
        "all_config": hf_config.to_json_string(),
    }


def min_cosine(reference: np.ndarray, other: np.ndarray) -> float:
    a = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    b = other / np.linalg.norm(other, axis=1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=1)))


def pool(token_embeddings: np.ndarray, attention_mask: np.ndarray, mode: str, normalize: bool) -> np.ndarray:
    """Pooling as ML Commons applies it to an ONNX model's token embeddings."""
    if mode == "CLS":
        pooled = token_embeddings[:, 0]
    elif mode == "MAX":
        masked = np.where(attention_mask[..., None] > 0, token_embeddings, -1e9)
        pooled = masked.max(axis=1)
    else:
        weights = attention_mask[..., None].astype(np.float32)
        pooled = (token_embeddings * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    if normalize:
        pooled = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled


def write_tokenizer_json(model: SentenceTransformer, target: Path) -> Path:
    """The fast tokenizer's ``tokenizer.json`` with truncation at the model's max_seq_length and no padding."""
    from tokenizers import Tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        model.tokenizer.save_pretrained(tmp)
        tokenizer = Tokenizer.from_file(str(Path(tmp) / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=model.max_seq_length)
    tokenizer.no_padding()
    tokenizer.save(str(target))
    return target


def _encode_batch(tokenizer_json: Path, texts: tuple[str, ...]) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(list(texts))
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


def onnx_embed(onnx_file: Path, tokenizer_json: Path, texts: tuple[str, ...], mode: str, normalize: bool) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    features = _encode_batch(tokenizer_json, texts)
    wanted = {i.name for i in session.get_inputs()}
    outputs = session.run(None, {k: v for k, v in features.items() if k in wanted})
    return pool(outputs[0], features["attention_mask"], mode, normalize)


def torchscript_embed(pt_file: Path, tokenizer_json: Path, texts: tuple[str, ...]) -> np.ndarray:
    import torch

    traced = torch.jit.load(str(pt_file), map_location="cpu")
    features = _encode_batch(tokenizer_json, texts)
    with torch.no_grad():
        out = traced(
            {
                "input_ids": torch.from_numpy(features["input_ids"]),
                "attention_mask": torch.from_numpy(features["attention_mask"]),
            }
        )
    return out["sentence_embedding"].numpy()


def export_onnx(model_dir: Path, target_dir: Path) -> tuple[Path, Any]:
    """Export the saved model to ONNX; returns the ONNX file and the model loaded on the ONNX backend."""
    from sentence_transformers import SentenceTransformer

    staging = target_dir / ".onnx-staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir, staging)
    onnx_model = SentenceTransformer(str(staging), backend="onnx", device="cpu")
    onnx_model.save_pretrained(str(staging))
    target = target_dir / "model.onnx"
    shutil.copyfile(staging / "onnx" / "model.onnx", target)
    return target, onnx_model


def quantization_target() -> str:
    """The dynamic-quantization preset for this CPU family (``arm64`` on ARM, ``avx2`` elsewhere)."""
    return "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "avx2"


def export_onnx_int8(onnx_model: Any, target_dir: Path) -> Path:
    from sentence_transformers.backend import export_dynamic_quantized_onnx_model

    staging = target_dir / ".onnx-staging"
    export_dynamic_quantized_onnx_model(onnx_model, quantization_target(), str(staging), file_suffix="int8")
    target = target_dir / "model_int8.onnx"
    shutil.copyfile(staging / "onnx" / "model_int8.onnx", target)
    return target


def export_torchscript(model: SentenceTransformer, tokenizer_json: Path, target: Path) -> Path:
    """Trace the whole SentenceTransformer (transformer, pooling, normalization) on CPU."""
    import torch

    model = model.to("cpu").eval()
    features = _encode_batch(tokenizer_json, SAMPLE_TEXTS[:2])
    inputs = {
        "input_ids": torch.from_numpy(features["input_ids"]),
        "attention_mask": torch.from_numpy(features["attention_mask"]),
    }
    with torch.no_grad():
        traced = torch.jit.trace(model, (inputs,), strict=False)
    torch.jit.save(traced, str(target))
    return target


def _zip(target: Path, files: dict[str, Path]) -> Path:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in files.items():
            archive.write(path, arcname=name)
    return target


def _record(
    path: Path,
    run_relative: str,
    model_format: str,
    config: dict[str, Any] | None,
    check: dict[str, float],
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "path": run_relative,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "model_format": model_format,
        "function_name": "TEXT_EMBEDDING",
        "check": check,
    }
    if config is not None:
        record["model_config"] = config
    return record


def _check(name: str, reference: np.ndarray, other: np.ndarray, threshold: float) -> dict[str, float]:
    cosine = min_cosine(reference, other)
    if cosine < threshold:
        raise ExportCheckError(
            f"training.export: the {name} export differs from the PyTorch model "
            f"(lowest cosine {cosine:.5f} on sample texts, need {threshold})",
            hint="report this with the model id; turn this export off to train without it",
        )
    return {"min_cosine": round(cosine, 6), "threshold": threshold, "samples": len(reference)}


def export_all(
    model: SentenceTransformer,
    model_dir: Path,
    stage_dir: Path,
    options: Export,
    name: str,
    log: Callable[..., None] | None = None,
    stage: str = "train",
) -> dict[str, dict[str, Any]]:
    """Write the exports ``options`` asks for under ``stage_dir/exports`` and return their records by kind.

    ``stage`` names the stage folder the records' run-relative paths start with.
    """
    wanted_onnx = options.onnx or options.onnx_int8 or options.opensearch_zip
    if not (wanted_onnx or options.opensearch_zip):
        return {}
    out = stage_dir / EXPORTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    rel = f"{stage}/{EXPORTS_DIR}"
    mode, normalize = pooling_mode(model), normalizes(model)
    reference = model.encode(list(SAMPLE_TEXTS), convert_to_numpy=True, normalize_embeddings=False)
    tokenizer_json = write_tokenizer_json(model, out / "tokenizer.json")
    records: dict[str, dict[str, Any]] = {}

    onnx_file, onnx_model = export_onnx(model_dir, out)
    onnx_check = _check(
        "ONNX", reference, onnx_embed(onnx_file, tokenizer_json, SAMPLE_TEXTS, mode, normalize), FP32_MIN_COSINE
    )
    onnx_config = model_config(model, "huggingface_transformers")
    if options.onnx:
        records["onnx"] = _record(onnx_file, f"{rel}/model.onnx", "ONNX", onnx_config, onnx_check)
    if options.onnx_int8:
        int8_file = export_onnx_int8(onnx_model, out)
        int8_check = _check(
            "int8 ONNX",
            reference,
            onnx_embed(int8_file, tokenizer_json, SAMPLE_TEXTS, mode, normalize),
            options.int8_min_cosine,
        )
        records["onnx_int8"] = _record(int8_file, f"{rel}/model_int8.onnx", "ONNX", onnx_config, int8_check)
    if options.opensearch_zip:
        pt_file = export_torchscript(model, tokenizer_json, out / f"{name}.pt")
        ts_check = _check(
            "TorchScript", reference, torchscript_embed(pt_file, tokenizer_json, SAMPLE_TEXTS), FP32_MIN_COSINE
        )
        ts_zip = _zip(out / f"{name}-torchscript.zip", {f"{name}.pt": pt_file, "tokenizer.json": tokenizer_json})
        records["opensearch_torchscript_zip"] = _record(
            ts_zip, f"{rel}/{ts_zip.name}", "TORCH_SCRIPT", model_config(model, "sentence_transformers"), ts_check
        )
        onnx_zip = _zip(out / f"{name}-onnx.zip", {f"{name}.onnx": onnx_file, "tokenizer.json": tokenizer_json})
        records["opensearch_onnx_zip"] = _record(onnx_zip, f"{rel}/{onnx_zip.name}", "ONNX", onnx_config, onnx_check)
        pt_file.unlink()
    if not options.onnx:
        onnx_file.unlink()
    shutil.rmtree(out / ".onnx-staging", ignore_errors=True)
    for kind, record in records.items():
        if log:
            log("export_written", kind=kind, path=record["path"], bytes=record["bytes"], **record["check"])
    return records
