"""Records from one file: JSONL, plain text, CSV/TSV with a header, or Parquet; gzip detected by content.

CSV/TSV are read with RFC 4180 quoting, or, with ``source.quoting: none``, as raw text split on the
delimiter only.

Text is decoded line by line, so with ``bad_records.on_error: skip`` a line in the wrong encoding
or a malformed JSON line is skipped and counted, and reading goes on.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
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
# Other compressions, refused by name: decoded as text they fail as a wrong encoding, or turn into junk documents.
OTHER_COMPRESSIONS = {
    "bzip2": re.compile(rb"BZh[1-9]1AY&SY"),
    "xz": re.compile(rb"\xfd7zXZ\x00"),
    "zstd": re.compile(rb"\x28\xb5\x2f\xfd"),
    "zip": re.compile(rb"PK\x03\x04"),
}
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
QUOTE_HINT = (
    'quote a whole field and double the quotes inside it ("say ""hi""") or, for a raw-text file that quotes no '
    "field (its quotes are text), set source.quoting to 'none'; or set source.bad_records.on_error to 'skip'"
)
DELIMITERS = {"csv": ",", "tsv": "\t"}
_UNPARSED = object()
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
    head = buffered.peek(10)[:10]  # type: ignore[attr-defined]
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    for kind, magic in OTHER_COMPRESSIONS.items():
        if magic.match(head):
            raise InputDataError(
                f"the file is {kind}-compressed; only gzip is read",
                path=where,
                hint="decompress it, or recompress it with gzip (the .gz name is optional)",
            )
    return buffered


def _is_wide(encoding: str) -> bool:
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def decoded_lines(stream: IO[bytes], encoding: str, where: str, policy: BadRecordPolicy) -> Iterator[tuple[int, str]]:
    """(line number, text) per line; a line that does not decode goes to the bad-record policy."""
    try:
        if _is_wide(encoding):
            # Only \n ends a line, as in the byte path below: a lone \r is text inside a field.
            text = io.TextIOWrapper(stream, encoding=encoding, newline="\n")
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


def _not_json_lines(first: str, parsed: Any, where: str) -> InputDataError | None:
    """A whole JSON array, or one object spread over several lines, where JSON Lines was expected.

    Read line by line, such a file fails on every line, or worse, with ``on_error: skip``, yields
    only the elements that happen to sit alone on a line.
    """
    text = first.strip()
    whole_array = text.startswith("[") and (parsed is _UNPARSED or isinstance(parsed, list))
    spread_object = text == "{" and parsed is _UNPARSED
    if not (whole_array or spread_object):
        return None
    return InputDataError(
        "the file is a JSON array or pretty-printed JSON, not JSON Lines (one JSON object per line)",
        path=where,
        hint=f"write one object per line, e.g. jq -c '.[]' {PurePosixPath(where).name} > corpus.jsonl for an array",
    )


def _jsonl(lines: Iterator[tuple[int, str]], where: str, policy: BadRecordPolicy) -> Iterator[RawRecord]:
    first = True
    for number, line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            if first and (error := _not_json_lines(line, _UNPARSED, where)):
                raise error from None
            first = False
            policy.bad("malformed_json", f"malformed JSON line ({exc})", where=where, line=number)
            continue
        if first and (error := _not_json_lines(line, record, where)):
            raise error
        first = False
        if not isinstance(record, dict):
            policy.bad(
                "malformed_json", f"expected a JSON object, got {type(record).__name__}", where=where, line=number
            )
            continue
        yield RawRecord(where, number, record)


def text_stem(name: str) -> str:
    """A plain-text file's name without ``.gz`` and its extension: "guides/setup.txt.gz" -> "guides/setup"."""
    path = PurePosixPath(name)
    path = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    return str(path.with_suffix(""))


def _reads_as_text(file: SourceFile, declared: str) -> bool:
    try:
        return detect_format(file, declared) == "text"
    except InputDataError:
        return False  # reported when the file is read


def text_id_stems(files: Sequence[SourceFile], declared: str) -> dict[str, str]:
    """The id stem of each file read as plain text, by ``where``: unique across the source.

    A stem only one file has is kept, so existing ids stay valid. Files sharing a stem ("a.txt",
    "a.md", "a.txt.gz") use their whole name instead; where that is taken too (another file's stem,
    or the same name twice from a glob reaching outside its folder), their location. The result
    depends on the set of files only, never on their order.
    """
    stems = {f.where: text_stem(f.name) for f in files if _reads_as_text(f, declared)}
    shared = {stem for stem, n in Counter(stems.values()).items() if n > 1}
    kept = set(stems.values()) - shared
    renamed = Counter(f.name for f in files if stems.get(f.where) in shared)
    unique: dict[str, str] = {}
    for file in files:
        stem = stems.get(file.where)
        if stem is None:
            continue
        if stem not in shared:
            unique[file.where] = stem
        elif file.name in kept or renamed[file.name] > 1:
            unique[file.where] = file.where
        else:
            unique[file.where] = file.name
    return unique


def _text(
    lines: Iterator[tuple[int, str]], file: SourceFile, text_unit: str, id_stem: str | None
) -> Iterator[RawRecord]:
    title = PurePosixPath(text_stem(file.name)).name
    stem = id_stem or text_stem(file.name)
    if text_unit == "file":
        body = "".join(line for _, line in lines)
        yield RawRecord(file.where, None, {"id": stem, "title": title, "text": body}, mapped=True)
        return
    for number, line in lines:
        if line.strip():
            yield RawRecord(file.where, number, {"id": f"{stem}-{number}", "title": "", "text": line}, mapped=True)


def _delimited(lines: Iterator[tuple[int, str]], where: str, fmt: str, policy: BadRecordPolicy) -> Iterator[RawRecord]:
    """CSV or TSV rows, quoted as RFC 4180 says (what pandas and R write, tab-separated too), strictly.

    Lenient quoting would let one stray quote silently swallow every following row into one field.
    """
    reader = csv.DictReader((line for _, line in lines), delimiter=DELIMITERS[fmt], strict=True)
    try:
        columns = len(reader.fieldnames or [])  # reads the header, so line_num counts from it
    except csv.Error as exc:
        raise InputDataError(f"cannot parse the header row ({exc})", path=where, line=1, hint=QUOTE_HINT) from None
    while True:
        # DictReader.line_num stays behind after a failed row; its csv.reader's does not.
        start = reader.reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                message = f"a quoted field that starts on line {start} is never closed"
                policy.bad("malformed_csv", message, where=where, line=start, hint=QUOTE_HINT)
                return
            line = reader.reader.line_num
            message = (
                "a carriage return (\\r) inside an unquoted field"
                if "new-line character seen in unquoted field" in str(exc)
                else f"cannot parse ({exc})"
            )
            policy.bad("malformed_csv", message, where=where, line=line, hint=QUOTE_HINT)
            continue
        if None in row:
            policy.bad(
                "malformed_csv",
                f"row has more fields than the header ({columns})",
                where=where,
                line=reader.line_num,
                hint="quote fields that contain the delimiter (a tab in TSV)",
            )
            continue
        yield RawRecord(where, reader.line_num, row)


def _without_line_end(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    return line.removesuffix("\r")


def _unquoted_hint(fmt: str, more: bool) -> str:
    if more:
        cause = f"no field can hold the delimiter ({'a tab' if fmt == 'tsv' else 'a comma'})"
    else:
        cause = "no field can hold a line break (this row may be the end of the one above)"
    return (
        f"with source.quoting 'none' {cause}: write the file with quoted fields and leave source.quoting at "
        "'rfc4180', or write it as JSONL; or set source.bad_records.on_error to 'skip'"
    )


def _unquoted(lines: Iterator[tuple[int, str]], where: str, fmt: str, policy: BadRecordPolicy) -> Iterator[RawRecord]:
    """CSV or TSV rows with no quoting at all (``source.quoting: none``): each line split on the delimiter.

    Quotes are text. A field can hold neither the delimiter nor a line break, so a row whose field
    count differs from the header's (a stray delimiter, or a record broken over two lines) is a bad
    record; guessing which fields it meant would put text under the wrong column. Empty and blank lines
    are skipped; a header naming a column twice is an error.
    """
    delimiter = DELIMITERS[fmt]
    first = next(lines, None)
    if first is None:
        return
    header = _without_line_end(first[1])
    if not header:
        raise InputDataError(
            "the header row is empty", path=where, line=first[0], hint="the first line must name the columns"
        )
    columns = header.split(delimiter)
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if repeated:
        raise InputDataError(
            f"the header names {', '.join(repr(name) for name in repeated)} more than once",
            path=where,
            line=first[0],
            hint="give every column its own name",
        )
    for number, line in lines:
        text = _without_line_end(line)
        if not text.strip():
            continue
        values = text.split(delimiter)
        if len(values) != len(columns):
            more = len(values) > len(columns)
            fields = f"{len(values)} field{'s' if len(values) > 1 else ''}"
            policy.bad(
                "malformed_csv",
                f"row has {fields}, {'more' if more else 'fewer'} than the header ({len(columns)})",
                where=where,
                line=number,
                hint=_unquoted_hint(fmt, more),
            )
            continue
        yield RawRecord(where, number, dict(zip(columns, values, strict=True)))


def _text_values(value: Any, encoding: str) -> Any:
    """Binary values (string columns some writers store without a UTF-8 annotation) decoded to text."""
    if isinstance(value, bytes):
        return value.decode(encoding)
    if isinstance(value, list):
        return [_text_values(v, encoding) for v in value]
    if isinstance(value, dict):
        return {k: _text_values(v, encoding) for k, v in value.items()}
    return value


def _parquet_rows(file: SourceFile, columns: list[str] | None) -> Iterator[dict[str, Any]]:
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
        rows = 0
        try:
            for batch in parquet.iter_batches(batch_size=1024, columns=wanted or None):
                for row in batch.to_pylist():
                    rows += 1
                    yield row
        except (OSError, ValueError) as exc:  # pyarrow's errors for corrupt pages derive from these
            raise InputDataError(
                f"not a readable Parquet file: it fails after row {rows} ({exc})", path=file.where
            ) from None


def _parquet(
    file: SourceFile, columns: list[str] | None, encoding: str, policy: BadRecordPolicy
) -> Iterator[RawRecord]:
    for number, row in enumerate(_parquet_rows(file, columns), start=1):
        try:
            decoded = _text_values(row, encoding)
        except UnicodeDecodeError as exc:
            policy.bad(
                "bad_encoding",
                f"a binary column is not valid {encoding} ({exc.reason})",
                where=file.where,
                line=number,
                hint="set source.encoding, or set source.bad_records.on_error to 'skip'",
            )
            continue
        yield RawRecord(file.where, number, decoded)


def read_file(
    file: SourceFile,
    *,
    fmt: str,
    text_unit: str,
    encoding: str,
    policy: BadRecordPolicy,
    columns: list[str] | None = None,
    id_stem: str | None = None,
    quoting: str = "rfc4180",
) -> Iterator[RawRecord]:
    """Every record in ``file``; an empty file goes to the bad-record policy (reason ``empty_file``).

    ``id_stem`` names plain-text documents (``text_id_stems``); by default the file's stem. ``quoting``
    (``rfc4180`` or ``none``) applies to CSV/TSV only.
    """
    fmt = detect_format(file, fmt)
    if file.size == 0:
        policy.bad(
            "empty_file",
            "file is empty",
            where=file.where,
            hint="remove it, or set source.bad_records.on_error to 'skip'",
        )
        return
    if fmt == "parquet":
        yield from _parquet(file, columns, encoding, policy)
        return
    with file.open() as raw:
        lines = decoded_lines(_binary(raw, file.where), encoding, file.where, policy)
        if fmt == "jsonl":
            yield from _jsonl(lines, file.where, policy)
        elif fmt == "text":
            yield from _text(lines, file, text_unit, id_stem)
        elif fmt in ("csv", "tsv"):
            rows = _unquoted if quoting == "none" else _delimited
            yield from rows(lines, file.where, fmt, policy)
        else:
            raise InputDataError(f"unsupported format '{fmt}'", path=file.where)
