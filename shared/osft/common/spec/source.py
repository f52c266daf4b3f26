"""Where the documents come from: local files, S3, an OpenSearch index, or ready-made pairs."""

from __future__ import annotations

import codecs
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from osft.common.spec.base import SpecModel

FileFormat = Literal["auto", "jsonl", "text", "csv", "tsv", "parquet"]


def _known_encoding(value: str) -> str:
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError("unknown text encoding; use a Python codec name such as utf-8, latin-1 or utf-16") from None
    return value


Encoding = Annotated[
    str,
    AfterValidator(_known_encoding),
    Field(
        min_length=1,
        description="Text encoding of the files (utf-8, latin-1, cp1252, utf-16...). A UTF-8 byte-order mark is ignored.",
    ),
]

Quoting = Annotated[
    Literal["rfc4180", "none"],
    Field(
        description="For CSV/TSV: 'rfc4180' reads quoted fields as pandas and R write them (a field that starts "
        "with a double quote is quoted, and a stray quote is a bad record); 'none' reads raw text (cut/paste output, "
        "unquoted database dumps): each line is split on the delimiter only and quotes stay as text, so no field "
        "can hold the delimiter or a line break, and a line whose field count differs from the header's is a bad "
        "record. Other formats ignore it.",
    ),
]
# Added after runs existed: at its default ("rfc4180", what every earlier run read with) it stays out of the
# stage fingerprint, so upgrading osft leaves finished extract stages done.
_QUOTING_ONLY_WHEN_SET = frozenset({"quoting"})


class FieldMapping(SpecModel):
    """Which record fields hold the id, the title and the text of a document.

    ``text`` may name several fields (joined with ``join_with``) and dotted paths such as
    ``body.content``. ``id`` set to null numbers documents by position; ``title`` set to null
    means documents have no title.
    """

    id: str | None = "id"
    title: str | None = "title"
    text: list[str] = Field(default_factory=lambda: ["text"], min_length=1)
    join_with: str = "\n"

    @field_validator("text", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class BadRecords(SpecModel):
    """What to do with a record that cannot be parsed or lacks its text."""

    on_error: Literal["fail", "skip"] = "fail"
    max_skipped: int | None = Field(default=None, ge=0, description="Fail anyway past this many skipped records.")


class LocalSource(SpecModel):
    """Files on this machine: one file, a folder, or a glob. Relative paths are relative to the spec file."""

    FINGERPRINT_ONLY_WHEN_SET = _QUOTING_ONLY_WHEN_SET

    type: Literal["local"]
    path: str = Field(min_length=1)
    format: FileFormat = "auto"
    text_unit: Literal["line", "file"] = Field(
        default="line", description="For plain text: one document per line, or one per file."
    )
    encoding: Encoding = "utf-8"
    quoting: Quoting = "rfc4180"
    fields: FieldMapping = Field(default_factory=FieldMapping)
    bad_records: BadRecords = Field(default_factory=BadRecords)


class S3Source(SpecModel):
    """One S3 object or every object under a prefix (``.gz`` objects are decompressed)."""

    FINGERPRINT_ONLY_WHEN_SET = _QUOTING_ONLY_WHEN_SET

    type: Literal["s3"]
    uri: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$",
        description="s3://bucket/key of one object, or s3://bucket/prefix/ (bucket names are 3 to 63 lowercase "
        "letters, digits, dots and hyphens).",
    )
    format: FileFormat = "auto"
    text_unit: Literal["line", "file"] = "line"
    encoding: Encoding = "utf-8"
    quoting: Quoting = "rfc4180"
    fields: FieldMapping = Field(default_factory=FieldMapping)
    bad_records: BadRecords = Field(default_factory=BadRecords)
    region: str | None = None


class BasicAuth(SpecModel):
    """HTTP basic auth. The password is never written in the spec: name an environment variable or a secret."""

    type: Literal["basic"]
    username: str = Field(min_length=1)
    password_env: str | None = None
    password_secret_arn: str | None = Field(default=None, description="AWS Secrets Manager secret id or ARN.")
    secret_key: str | None = Field(
        default=None, description="When the secret is a JSON object, the key that holds the password."
    )

    @model_validator(mode="after")
    def _exactly_one_password_source(self) -> BasicAuth:
        if (self.password_env is None) == (self.password_secret_arn is None):
            raise ValueError("give exactly one of password_env or password_secret_arn")
        return self


class SigV4Auth(SpecModel):
    """AWS SigV4 signing for Amazon OpenSearch Service (``es``) or Serverless (``aoss``)."""

    type: Literal["sigv4"]
    region: str = Field(min_length=1)
    service: Literal["es", "aoss"] = "es"


OpenSearchAuth = Annotated[BasicAuth | SigV4Auth, Field(discriminator="type")]


class OpenSearchConnection(SpecModel):
    """How to reach an OpenSearch cluster; shared by the extractor and the registrar."""

    url: str = Field(pattern=r"^https?://", description="Cluster URL, e.g. https://search-x.us-east-1.es.amazonaws.com")
    auth: OpenSearchAuth | None = None
    verify_certs: bool = True
    ca_certs: str | None = None
    timeout_s: float = Field(default=60, gt=0)
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and lost connections.")
    retry_backoff_s: float = Field(
        default=0.5,
        gt=0,
        description="First retry delay; doubles on each retry (with jitter) up to retry_backoff_max_s.",
    )
    retry_backoff_max_s: float = Field(default=30, gt=0)


class OpenSearchSource(SpecModel):
    """An OpenSearch index, read with point-in-time + search_after (scroll where PIT is unavailable)."""

    type: Literal["opensearch"]
    connection: OpenSearchConnection
    index: str = Field(min_length=1)
    query: dict[str, Any] | None = Field(
        default=None, description="An OpenSearch query DSL object to filter documents."
    )
    fields: FieldMapping = Field(default_factory=lambda: FieldMapping(id="_id"))
    slices: int = Field(default=4, ge=1, le=64)
    page_size: int = Field(default=1000, ge=1, le=10000)
    keep_alive: str = Field(default="5m", pattern=r"^\d+[smh]$")
    iteration: Literal["auto", "pit", "scroll"] = Field(
        default="auto", description="'auto' uses point-in-time and falls back to scroll where PIT is unavailable."
    )
    tiebreak_field: str = Field(
        default="_id",
        min_length=1,
        description="Unique sort field that breaks ties after _doc in PIT pages; '_shard_doc' on OpenSearch 3.3+.",
    )
    bad_records: BadRecords = Field(default_factory=BadRecords)

    @field_validator("fields")
    @classmethod
    def _ids_from_the_index(cls, value: FieldMapping) -> FieldMapping:
        # Parallel slices arrive in a different order on every run, so position ids would change between runs.
        if value.id is None:
            raise ValueError(
                "id: null numbers documents by position, which changes between runs of a sliced export; "
                "leave it as '_id' (every OpenSearch document has one) or name a unique field"
            )
        return value

    @field_validator("iteration")
    @classmethod
    def _serverless_has_no_scroll(cls, value: str, info: ValidationInfo) -> str:
        auth = getattr(info.data.get("connection"), "auth", None)
        if value == "scroll" and isinstance(auth, SigV4Auth) and auth.service == "aoss":
            raise ValueError(
                "Amazon OpenSearch Serverless (connection.auth.service 'aoss') has no scroll API; "
                "use 'pit' or 'auto' (point in time)"
            )
        return value


class PairsSource(SpecModel):
    """Labelled (query, passage) pairs a user already has; query generation is skipped.

    Accepted keys: ``query``/``text_a``/``anchor`` for the query and ``passage``/``text_b``/``positive``
    for the passage, in JSONL, CSV or TSV with a header. ``path`` is a local file, folder or glob, or
    an ``s3://`` object or prefix.
    """

    FINGERPRINT_ONLY_WHEN_SET = _QUOTING_ONLY_WHEN_SET

    type: Literal["pairs"]
    path: str = Field(min_length=1)
    format: FileFormat = "auto"
    encoding: Encoding = "utf-8"
    quoting: Quoting = "rfc4180"
    region: str | None = Field(default=None, description="AWS region when path is an s3:// URI.")
    bad_records: BadRecords = Field(default_factory=BadRecords)


Source = Annotated[LocalSource | S3Source | OpenSearchSource | PairsSource, Field(discriminator="type")]
