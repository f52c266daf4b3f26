"""What the registrar deploys: the model folder and exports the train stage produced (or, for a rejected tuned
model, the base model the evaluate stage saved), and ``model.tar.gz``."""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osft.common.errors import OsftError, StorageError
from osft.common.manifests import EvaluateManifest, TrainManifest
from osft.common.stage import StageContext
from osft.common.storage import Location, sha256_file

LOCAL_ZIP_KINDS = {"torchscript": "opensearch_torchscript_zip", "onnx": "opensearch_onnx_zip"}
SPARSE_ENCODING_KIND = "sparse_encoding_zip"
SPARSE_TOKENIZE_KIND = "sparse_tokenize_zip"
INT8_KIND = "onnx_int8"


@dataclass(frozen=True)
class ExportedZip:
    """One ML Commons model zip from ``TrainStats.exports``: what ``_register`` needs about it."""

    kind: str
    path: str
    sha256: str
    size_bytes: int
    model_format: str
    function_name: str
    model_config: dict[str, Any] | None

    @classmethod
    def from_record(cls, kind: str, record: dict[str, Any], stage: str = "train") -> ExportedZip:
        missing = [k for k in ("path", "sha256", "bytes", "model_format", "function_name") if k not in record]
        if missing:
            field = "exports" if stage == "train" else "base_exports"
            raise StorageError(
                f"{stage}/manifest.json: stats.{field}.{kind} lacks {', '.join(missing)}",
                hint=f"re-run the {stage} stage with this osft version ({stage} run --force)",
            )
        return cls(
            kind=kind,
            path=record["path"],
            sha256=record["sha256"],
            size_bytes=int(record["bytes"]),
            model_format=record["model_format"],
            function_name=record["function_name"],
            model_config=record.get("model_config"),
        )


@dataclass(frozen=True)
class TrainedModel:
    """The model to deploy as a stage manifest describes it: the fine-tuned one, or the base one evaluate saved.

    ``stage`` is the stage that wrote it (``train``, or ``evaluate`` for the base model).
    """

    kind: str
    model_dir: str
    exports: dict[str, dict[str, Any]]
    sparse_mode: str | None = None
    stage: str = "train"

    @classmethod
    def from_manifest(cls, manifest: TrainManifest, sparse_mode: str | None = None) -> TrainedModel:
        stats = manifest.stats
        return cls(kind=stats.model_type, model_dir=stats.model_dir, exports=stats.exports, sparse_mode=sparse_mode)

    @classmethod
    def base_from_evaluation(cls, manifest: EvaluateManifest) -> TrainedModel:
        """The base model the evaluate stage saved because the gate rejected the tuned one (dense only)."""
        stats = manifest.stats
        if stats.base_model_dir is None:
            raise OsftError(
                "evaluate/manifest.json: the gate rejected the tuned model, but the evaluate stage saved no base "
                "model to deploy in its place (deploy.when_rejected was not 'base' when it ran)",
                hint="re-run the evaluate stage (evaluate run --force), then register",
            )
        return cls(kind="dense", model_dir=stats.base_model_dir, exports=stats.base_exports, stage="evaluate")

    @property
    def is_base(self) -> bool:
        return self.stage != "train"

    @property
    def doc_only(self) -> bool:
        return self.kind == "sparse" and self.sparse_mode == "doc-only"

    def export(self, kind: str, *, needed_for: str, hint: str) -> ExportedZip:
        """The export of ``kind``; ``hint`` may name ``{stage}``, the stage that wrote the model (train or evaluate)."""
        record = self.exports.get(kind)
        if record is None:
            have = ", ".join(sorted(self.exports)) or "none"
            raise OsftError(
                f"{self.stage}/manifest.json: no '{kind}' export, which {needed_for} needs (exports: {have})",
                hint=hint.format(stage=self.stage),
            )
        return ExportedZip.from_record(kind, record, self.stage)

    def local_zips(self, local_format: str) -> list[ExportedZip]:
        """The zips a local registration uploads: the embedding model, plus the query tokenizer for doc-only sparse."""
        if self.kind == "sparse":
            hint = "train a sparse model with this osft version; it exports the ML Commons zips"
            zips = [self.export(SPARSE_ENCODING_KIND, needed_for="a local sparse model", hint=hint)]
            if self.doc_only:
                zips.append(self.export(SPARSE_TOKENIZE_KIND, needed_for="doc-only sparse search", hint=hint))
            return zips
        kind = LOCAL_ZIP_KINDS[local_format]
        return [
            self.export(
                kind,
                needed_for=f"deploy.opensearch.mode 'local' with local_format '{local_format}'",
                hint="set training.export.opensearch_zip: true and re-run the {stage} stage",
            )
        ]

    def tokenizer_zip(self) -> ExportedZip | None:
        """The SPARSE_TOKENIZE zip a doc-only sparse model searches with (also in remote mode), if exported."""
        if not self.doc_only or SPARSE_TOKENIZE_KIND not in self.exports:
            return None
        return ExportedZip.from_record(SPARSE_TOKENIZE_KIND, self.exports[SPARSE_TOKENIZE_KIND], self.stage)


def build_model_tarball(model_dir: Path, target: Path, extra_files: dict[str, Path] | None = None) -> str:
    """``model.tar.gz`` of the model folder's contents (SageMaker extracts it to /opt/ml/model); returns its SHA-256.

    The archive is reproducible (sorted names, zeroed times and owners), so the same model
    gives the same hash and a re-run reuses the SageMaker model built from it.
    """
    if not (model_dir / "modules.json").exists():
        raise StorageError(f"{model_dir}: not a sentence-transformers folder (no modules.json)")

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    files = {p.relative_to(model_dir).as_posix(): p for p in sorted(model_dir.rglob("*")) if p.is_file()}
    files.update(extra_files or {})
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(target, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for name in sorted(files):
            tar.add(str(files[name]), arcname=name, filter=clean)
    return sha256_file(target)


def content_hash(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def fetch(ctx: StageContext, relative: str) -> Path:
    """A local copy of a file or folder of the run folder (downloaded when on S3)."""
    path = ctx.input_path(relative)
    if not path.exists():
        raise StorageError(
            f"{Location(ctx.run_dir).child(relative).uri}: not found", hint=f"re-run the {relative.split('/')[0]} stage"
        )
    return path


def upload_artifact(local: Path, uri: str, sha256: str) -> bool:
    """Upload ``local`` to the s3:// ``uri`` with its SHA-256 as metadata, unless that exact content is there.

    Returns True when it uploaded.
    """
    from osft.common.storage import _s3_error, s3_client, split_s3

    bucket, key = split_s3(uri)
    client = s3_client()
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == sha256:
            return False
    except Exception as exc:  # noqa: BLE001 - a missing object means upload; anything else is reported
        mapped = _s3_error(exc, uri)
        if "not found" not in mapped.message:
            raise mapped from None
    try:
        client.upload_file(str(local), bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}})
    except Exception as exc:  # noqa: BLE001
        raise _s3_error(exc, uri) from None
    return True
