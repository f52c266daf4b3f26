"""Loading a dense or sparse sentence-transformers model (fp32 torch or ONNX) and encoding a batch of texts."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from osft.common.errors import OsftError
from osft.trainer.serving.settings import ServeSettings

Kind = Literal["dense", "sparse"]


def model_kind(model: str) -> Kind:
    """'sparse' for a SparseEncoder folder (``config_sentence_transformers.json`` says so), else 'dense'."""
    config = Path(model) / "config_sentence_transformers.json"
    if config.exists():
        try:
            if json.loads(config.read_text(encoding="utf-8")).get("model_type") == "SparseEncoder":
                return "sparse"
        except ValueError:
            raise OsftError(f"{config}: not valid JSON", hint="re-export the model folder") from None
    return "dense"


def find_int8_onnx(model_dir: Path) -> str:
    """The relative path of the first int8 ONNX file in ``<model>/onnx/``."""
    found = sorted(model_dir.glob("onnx/*int8*.onnx"))
    if not found:
        raise OsftError(
            f"{model_dir}: no int8 ONNX file (onnx/*int8*.onnx) to serve with precision 'int8'",
            hint="export one with sentence_transformers.export_dynamic_quantized_onnx_model, "
            "or give --onnx-file, or serve with --precision fp32",
        )
    return found[0].relative_to(model_dir).as_posix()


def _folder_with_onnx(model_dir: Path, onnx_file: Path) -> tuple[Path, str]:
    """A folder that looks like ``model_dir`` with ``onnx_file`` inside it (symlinks), for a file kept elsewhere."""
    staging = Path(tempfile.mkdtemp(prefix="osft-serve-"))
    for entry in model_dir.iterdir():
        if entry.name != "onnx":
            (staging / entry.name).symlink_to(entry.resolve())
    (staging / "onnx").mkdir()
    (staging / "onnx" / onnx_file.name).symlink_to(onnx_file.resolve())
    return staging, f"onnx/{onnx_file.name}"


@dataclass
class Encoder:
    """A loaded model and what ``/info`` reports about it.

    ``encode`` takes a list of texts and returns one item per text: a list of floats for a
    dense model, a ``{token: weight}`` map (non-zero weights only) for a sparse one.
    """

    model: Any
    name: str
    kind: Kind
    backend: Literal["torch", "onnx"]
    precision: Literal["fp32", "int8"]
    onnx_file: str | None = None

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def device(self) -> str:
        return str(self.model.device)

    @property
    def max_seq_length(self) -> int | None:
        return getattr(self.model, "max_seq_length", None)

    def encode(self, texts: list[str]) -> list[Any]:
        if not texts:
            return []
        if self.kind == "sparse":
            embeddings = self.model.encode_document(texts, batch_size=len(texts), convert_to_tensor=True)
            decoded = self.model.decode(embeddings)
            return [{token: round(float(weight), 6) for token, weight in pairs} for pairs in decoded]
        vectors = self.model.encode(texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False)
        return vectors.tolist()

    def info(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "kind": self.kind,
            "dimension": self.dimension,
            "device": self.device,
            "precision": self.precision,
            "backend": self.backend,
            "onnx_file": self.onnx_file,
            "max_seq_length": self.max_seq_length,
        }


def load_encoder(settings: ServeSettings) -> Encoder:
    """Load the model ``settings`` names: a local folder (or a hub id), fp32 torch or an ONNX file.

    Raises OsftError when the folder is missing or holds no usable model.
    """
    from sentence_transformers import SentenceTransformer, SparseEncoder

    source = settings.model
    local = Path(source)
    if not local.exists() and (local.is_absolute() or source.startswith(".")):
        raise OsftError(
            f"model folder {source} does not exist",
            hint="give --model (or OSFT_SERVE_MODEL) a SentenceTransformer folder; SageMaker puts it in /opt/ml/model",
        )
    if local.exists() and not (local / "modules.json").exists():
        raise OsftError(
            f"{source}: not a sentence-transformers folder (no modules.json)",
            hint="serve the folder the train stage wrote (train/model), or the extracted model.tar.gz",
        )
    kind = model_kind(source) if local.exists() else "dense"
    cls = SparseEncoder if kind == "sparse" else SentenceTransformer

    onnx_file = settings.onnx_file
    if settings.precision == "int8" and onnx_file is None:
        onnx_file = find_int8_onnx(local)
    use_onnx = onnx_file is not None and settings.precision != "fp32"
    kwargs: dict[str, Any] = {"device": settings.device} if settings.device else {}
    try:
        if use_onnx:
            assert onnx_file is not None
            folder, relative = local, onnx_file
            candidate = Path(onnx_file)
            if candidate.is_absolute():
                if not candidate.exists():
                    raise OsftError(f"ONNX file {onnx_file} does not exist", hint="check --onnx-file")
                if candidate.resolve().is_relative_to(local.resolve()):
                    relative = candidate.resolve().relative_to(local.resolve()).as_posix()
                else:
                    folder, relative = _folder_with_onnx(local, candidate)
            elif not (local / relative).exists():
                raise OsftError(f"{local / relative}: ONNX file not found", hint="check --onnx-file")
            model = cls(str(folder), backend="onnx", model_kwargs={"file_name": relative}, **kwargs)
            precision = "int8" if "int8" in Path(relative).name else "fp32"
            return Encoder(model, source, kind, "onnx", precision, relative)
        model = cls(source, **kwargs)
    except OSError as exc:
        raise OsftError(
            f"cannot load the model {source} ({exc.__class__.__name__}: {exc})",
            hint="check the folder; a hub id needs network access (HF_HUB_OFFLINE unset)",
        ) from None
    model.eval()
    return Encoder(model, source, kind, "torch", "fp32")
