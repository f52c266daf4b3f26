"""Manifest of the extract stage."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from osft.common.manifests.base import StageManifest, StageStats


class ExtractStats(StageStats):
    """What the extract stage read, removed and wrote.

    Corpus shards (``shards``, relative to the stage folder) hold ``{"id", "title", "text"}``
    objects. For a ``pairs`` source, ``pairs_file`` names a JSONL of ``{"query_id", "query",
    "doc_id"}`` objects whose ``doc_id`` points into the shards; querygen uses them as they are.
    """

    source: str = Field(description="What was read: a path, URI or index.")
    records_read: int = 0
    documents_written: int = Field(default=0, description="Corpus entries written (passages, when split).")
    skipped_bad_records: int = 0
    skipped_by_reason: dict[str, int] = Field(
        default_factory=dict,
        description="Bad records skipped, by reason (malformed_json, bad_encoding, missing_text...).",
    )
    removed: dict[str, int] = Field(default_factory=dict, description="Documents removed, by reason.")
    length_histogram: dict[str, int] = Field(default_factory=dict, description="Characters per document, by bucket.")
    length_chars: dict[str, float] = Field(
        default_factory=dict, description="min, mean and max characters per written document."
    )
    documents_split: int = Field(default=0, description="Documents longer than max_passage_tokens.")
    passages_from_splits: int = Field(default=0, description="Passages those documents became.")
    iteration: str | None = Field(default=None, description="For OpenSearch: 'pit' or 'scroll'.")
    retries: int = Field(default=0, description="For OpenSearch: requests retried after 429, 5xx or a lost connection.")
    shards: list[str] = Field(default_factory=list)
    pairs_file: str | None = Field(default=None, description="Set when the source was ready-made pairs.")
    pairs_written: int = 0


class ExtractManifest(StageManifest):
    stage_name: ClassVar[str] = "extract"
    stats: ExtractStats
