"""Manifest of the register stage."""

from __future__ import annotations

from typing import ClassVar

from osft.common.manifests.base import StageManifest, StageStats


class RegisterStats(StageStats):
    skipped_reason: str | None = None
    endpoint_name: str | None = None
    connector_id: str | None = None
    model_group_id: str | None = None
    model_id: str | None = None
    smoke_test: str | None = None


class RegisterManifest(StageManifest):
    stage_name: ClassVar[str] = "register"
    stats: RegisterStats
