"""Reading and writing JSON Lines, plain or gzip-compressed, with line-numbered errors."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from osft.common.errors import InputDataError
from osft.common.storage import atomic_path


def open_text(path: Path) -> io.TextIOBase:
    """Open a UTF-8 text file for reading, gunzipped when it ends in .gz; a byte-order mark is skipped."""
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
        return open(path, encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputDataError(
            "file not found", path=str(path), hint="check the path, relative to the spec file"
        ) from None
    except IsADirectoryError:
        raise InputDataError("is a folder, not a JSON Lines file", path=str(path)) from None
    except OSError as exc:
        raise InputDataError(f"cannot read ({exc.strerror or exc})", path=str(path)) from None


def read_jsonl(path: Path, *, skip_bad: bool = False, bad: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """Yield one object per non-empty line; a malformed line raises InputDataError naming file and line.

    With ``skip_bad`` the line numbers of malformed lines are appended to ``bad`` instead.
    """
    for _, record in read_jsonl_numbered(path, skip_bad=skip_bad, bad=bad):
        yield record


def read_jsonl_numbered(
    path: Path, *, skip_bad: bool = False, bad: list[int] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Like ``read_jsonl``, yielding (line number, object)."""
    with open_text(path) as handle:
        line_no = 0
        while True:
            try:
                line = handle.readline()
            except UnicodeDecodeError as exc:
                raise InputDataError(
                    f"not valid UTF-8 near line {line_no + 1} ({exc.reason})",
                    path=str(path),
                    line=line_no + 1,
                    hint="re-encode the file as UTF-8",
                ) from None
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                raise InputDataError(
                    f"not a complete gzip file after line {line_no} ({exc})",
                    path=str(path),
                    hint="the file is cut short or not gzip: write it again, or remove the .gz suffix if it is plain",
                ) from None
            if not line:
                return
            line_no += 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"expected a JSON object, got {type(record).__name__}")
            except ValueError as exc:
                if skip_bad:
                    if bad is not None:
                        bad.append(line_no)
                    continue
                raise InputDataError(
                    f"malformed JSON line ({exc})",
                    path=str(path),
                    line=line_no,
                    hint="each line must be one JSON object: fix or remove this line",
                ) from None
            yield line_no, record


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records atomically (gzip when the name ends in .gz); return how many were written."""
    count = 0
    with atomic_path(path) as tmp, _open_for_write(tmp, compressed=path.suffix == ".gz") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def _open_for_write(path: Path, *, compressed: bool) -> IO[str]:
    return open_gzip_text(path) if compressed else open(path, "w", encoding="utf-8")


def open_gzip_text(path: Path, compresslevel: int = 9) -> IO[str]:
    """Open a gzip file for text writing whose bytes depend only on what is written.

    gzip stamps the write time and the file name into its header, so the same records written a
    second later, or under another temporary name, would hash differently and make every later
    stage re-run. A zero timestamp and an empty name keep equal content byte-identical.
    """
    return io.TextIOWrapper(_ReproducibleGzipFile(path, compresslevel), encoding="utf-8")


class _ReproducibleGzipFile(gzip.GzipFile):
    def __init__(self, path: Path, compresslevel: int) -> None:
        self._raw = open(path, "wb")  # noqa: SIM115 - closed in close()
        super().__init__(filename="", mode="wb", fileobj=self._raw, compresslevel=compresslevel, mtime=0)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one record and flush it: the building block of resumable, record-by-record progress."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()


def read_jsonl_tolerant(path: Path) -> Iterator[dict[str, Any]]:
    """Read an append-only progress file, ignoring a last line cut short by a kill."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                yield json.loads(line)
            except ValueError:
                continue
