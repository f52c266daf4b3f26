"""Records from one file: JSONL, plain text, CSV/TSV with a header, or Parquet; gzip detected by content.

Text is decoded line by line, so with ``bad_records.on_error: skip`` a line in the wrong encoding
or a malformed JSON line is skipped and counted, and reading goes on.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any

from osft.common.errors import InputDataError
from osft.extractor.bad_records import BadRecordPolicy
from osft.extractor.source_files import SourceFile

SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "text",
    ".md": "text",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}
GZIP_MAGIC = b"\x1f\x8b"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class RawRecord:
    """A record as read, with where it came from. ``mapped`` records are already ``{id, title, text}``."""

    where: str
    line: int | None
    data: dict[str, Any]
    mapped: bool = False


def detect_format(file: SourceFile, declared: str) -> str:
    if declared != "auto":
        return declared
    suffixes = [s.lower() for s in PurePosixPath(file.name).suffixes if s.lower() != ".gz"]
    fmt = SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise InputDataError(
            "cannot tell the file format from its name",
            path=file.where,
            hint="name it .jsonl/.txt/.csv/.tsv/.parquet (optionally .gz), or set source.format",
        )
    return fmt


class _ReadAdapter(io.RawIOBase):
    """Turns anything with ``read(n)`` (a boto3 StreamingBody) into a raw stream io.BufferedReader accepts."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _binary(stream: IO[bytes], where: str) -> IO[bytes]:
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(_ReadAdapter(stream), 1 << 20)
    if buffered.peek(2)[:2] == GZIP_MAGIC:  # type: ignore[attr-defined]
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


def _is_wide(encoding: str) -> bool:
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def decoded_lines(stream: IO[bytes], encoding: str, where: str, policy: BadRecordPolicy) -> Iterator[tuple[int, str]]:
    """(line number, text) per line; a line that does not decode goes to the bad-record policy."""
    try:
        if _is_wide(encoding):
            text = io.TextIOWrapper(stream, encoding=encoding, newline="")
            try:
                yield from enumerate(text, start=1)
            except UnicodeDecodeError as exc:
                raise InputDataError(
                    f"not valid {encoding} ({exc.reason})", path=where, hint="check source.encoding"
                ) from None
            return
        for number, raw in enumerate(stream, start=1):
            if number == 1:
                if raw.startswith(UTF16_BOMS):
                    raise InputDataError(
                        f"file is UTF-16 (it starts with a UTF-16 byte-order mark), not {encoding}",
                        path=where,
                        hint="set source.encoding to utf-16, or re-encode the file as UTF-8",
                    )
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield number, raw.decode(encoding)
            except UnicodeDecodeError as exc:
                policy.bad(
                    "bad_encoding",
                    f"not valid {encoding} ({exc.reason} at byte {exc.start} of the line)",
                    where=where,
                    line=number,
                    hint="set source.encoding (latin-1, cp1252...) or re-encode the file as UTF-8; "
                    "or set source.bad_records.on_error to 'skip'",
                )
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputDataError(f"compressed data is corrupt or cut short ({exc})", path=where) from None


def _jsonl(lines: Iterator[tuple[int, str]], where: str, policy: BadRecordPolicy) -> Iterator[RawRecord]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            policy.bad("malformed_json", f"malformed JSON line ({exc})", where=where, line=number)
            continue
        if not isinstance(record, dict):
            policy.bad(
                "malformed_json", f"expected a JSON object, got {type(record).__name__}", where=where, line=number
            )
            continue
        yield RawRecord(where, number, record)


def _text(lines: Iterator[tuple[int, str]], file: SourceFile, text_unit: str) -> Iterator[RawRecord]:
    path = PurePosixPath(file.name)
    path = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    stem = str(path.with_suffix(""))  # "guides/setup.txt.gz" -> "guides/setup"
    if text_unit == "file":
        body = "".join(line for _, line in lines)
        title = PurePosixPath(stem).name
        yield RawRecord(file.where, None, {"id": stem, "title": title, "text": body}, mapped=True)
        return
    for number, line in lines:
        if line.strip():
            yield RawRecord(file.where, number, {"id": f"{stem}-{number}", "title": "", "text": line}, mapped=True)


def _delimited(
    lines: Iterator[tuple[int, str]], where: str, delimiter: str, policy: BadRecordPolicy
) -> Iterator[RawRecord]:
    reader = csv.DictReader((line for _, line in lines), delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            policy.bad("malformed_csv", f"cannot parse ({exc})", where=where, line=reader.line_num)
            continue
        if None in row:
            policy.bad(
                "malformed_csv",
                f"row has more fields than the header ({len(reader.fieldnames or [])})",
                where=where,
                line=reader.line_num,
                hint="quote fields that contain the delimiter",
            )
            continue
        yield RawRecord(where, reader.line_num, row)


def _parquet(file: SourceFile, columns: list[str] | None) -> Iterator[RawRecord]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputDataError(
            "reading Parquet needs pyarrow", path=file.where, hint="pip install 'osft-extractor[parquet]'"
        ) from None
    with file.local_copy() as path:
        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise InputDataError(f"not a readable Parquet file ({exc})", path=file.where) from None
        names = set(parquet.schema_arrow.names)
        wanted = [c for c in columns if c in names] if columns else None
        number = 0
        for batch in parquet.iter_batches(batch_size=1024, columns=wanted or None):
            for row in batch.to_pylist():
                number += 1
                yield RawRecord(file.where, number, row)


def read_file(
    file: SourceFile,
    *,
    fmt: str,
    text_unit: str,
    encoding: str,
    policy: BadRecordPolicy,
    columns: list[str] | None = None,
) -> Iterator[RawRecord]:
    """Every record in ``file``; an empty file goes to the bad-record policy (reason ``empty_file``)."""
    fmt = detect_format(file, fmt)
    if file.size == 0:
        policy.bad("empty_file", "file is empty", where=file.where, hint="remove it, or set bad_records.on_error: skip")
        return
    if fmt == "parquet":
        yield from _parquet(file, columns)
        return
    with file.open() as raw:
        lines = decoded_lines(_binary(raw, file.where), encoding, file.where, policy)
        if fmt == "jsonl":
            yield from _jsonl(lines, file.where, policy)
        elif fmt == "text":
            yield from _text(lines, file, text_unit)
        elif fmt in ("csv", "tsv"):
            yield from _delimited(lines, file.where, "\t" if fmt == "tsv" else ",", policy)
        else:
            raise InputDataError(f"unsupported format '{fmt}'", path=file.where)
