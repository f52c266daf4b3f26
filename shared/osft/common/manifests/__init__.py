"""Typed, versioned manifests: the contract between stages."""

from __future__ import annotations

from osft.common.errors import StorageError
from osft.common.manifests.base import MANIFEST_VERSION, FileRecord, StageManifest, StageStats, Timings
from osft.common.manifests.evaluate import EvaluateManifest, EvaluateStats
from osft.common.manifests.extract import ExtractManifest, ExtractStats
from osft.common.manifests.querygen import QuerygenManifest, QuerygenStats
from osft.common.manifests.register import RegisterManifest, RegisterStats
from osft.common.manifests.train import TrainManifest, TrainStats

MANIFEST_TYPES: dict[str, type[StageManifest]] = {
    m.stage_name: m for m in (ExtractManifest, QuerygenManifest, TrainManifest, EvaluateManifest, RegisterManifest)
}


def manifest_type(stage: str) -> type[StageManifest]:
    try:
        return MANIFEST_TYPES[stage]
    except KeyError:
        raise StorageError(f"no manifest type for stage '{stage}'") from None


__all__ = [
    "MANIFEST_TYPES",
    "MANIFEST_VERSION",
    "EvaluateManifest",
    "EvaluateStats",
    "ExtractManifest",
    "ExtractStats",
    "FileRecord",
    "QuerygenManifest",
    "QuerygenStats",
    "RegisterManifest",
    "RegisterStats",
    "StageManifest",
    "StageStats",
    "Timings",
    "TrainManifest",
    "TrainStats",
    "manifest_type",
]
