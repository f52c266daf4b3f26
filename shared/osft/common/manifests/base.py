"""The typed record every stage writes last, once its outputs are complete."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_VERSION = 1


class FileRecord(BaseModel):
    """A file a stage read or wrote, by path relative to the run folder (or absolute URI)."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str | None = None
    bytes: int | None = None


class Timings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    started_at: datetime
    finished_at: datetime
    seconds: float
    steps: dict[str, float] = Field(default_factory=dict)


class StageStats(BaseModel):
    """Stage-specific figures; each stage defines a subclass with its own fields."""

    model_config = ConfigDict(extra="forbid")


class StageManifest(BaseModel):
    """What a stage consumed and produced. Written last: its presence means the stage completed."""

    model_config = ConfigDict(extra="forbid")
    stage_name: ClassVar[str] = ""

    manifest_version: int = MANIFEST_VERSION
    stage: str
    run_id: str
    fingerprint: str = Field(description="Hash of everything that determines this stage's outputs.")
    inputs: list[FileRecord] = Field(default_factory=list)
    outputs: list[FileRecord] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    timings: Timings
    versions: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list, description="Plain-language remarks for the report.")
    stats: Any = None
