"""The files a source names, local or on S3, each opened as a binary stream on demand."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from osft.common.errors import CredentialsError, InputDataError, StorageError
from osft.common.storage import is_s3, s3_client, split_s3


@dataclass(frozen=True)
class SourceFile:
    """One input file: where it is (for messages), its name relative to the source root (for ids)."""

    where: str
    name: str
    size: int | None
    open: Callable[[], AbstractContextManager[IO[bytes]]]
    version: str = ""

    @contextmanager
    def local_copy(self) -> Iterator[Path]:
        """A seekable local path (Parquet needs one): the file itself, or a temporary download."""
        if not is_s3(self.where):
            yield Path(self.where)
            return
        fd, tmp = tempfile.mkstemp(suffix=Path(self.name).suffix)
        os.close(fd)
        try:
            with self.open() as body, open(tmp, "wb") as out:
                shutil.copyfileobj(body, out, 1 << 20)
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)


def _hidden(name: str) -> bool:
    return any(part.startswith((".", "_")) for part in Path(name).parts)


def local_files(path: str) -> list[SourceFile]:
    """One file, every file below a folder (hidden and ``_``-prefixed names skipped), or a glob."""
    if any(ch in path for ch in "*?["):
        paths = sorted(Path(p) for p in glob.glob(path, recursive=True) if Path(p).is_file())
        root = Path(path.split("*")[0].split("?")[0].split("[")[0])
        root = root if root.is_dir() else root.parent
    elif Path(path).is_dir():
        root = Path(path)
        paths = sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(str(p.relative_to(root))))
    elif Path(path).is_file():
        root = Path(path).parent
        paths = [Path(path)]
    else:
        raise InputDataError("no such file or folder", path=path, hint="check source.path (relative to the spec file)")
    if not paths:
        raise InputDataError(
            "no files found", path=path, hint="check source.path; hidden and _-prefixed files are skipped"
        )
    files = []
    for p in paths:
        stat = p.stat()
        files.append(
            SourceFile(
                where=str(p),
                name=p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name,
                size=stat.st_size,
                open=lambda p=p: open(p, "rb"),  # noqa: SIM115 - the caller uses it as a context manager
                version=f"{stat.st_size}:{stat.st_mtime_ns}",
            )
        )
    return files


def _s3_problem(exc: Exception, uri: str) -> Exception:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return CredentialsError(f"{uri}: no AWS credentials found", hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID/SECRET")
    if isinstance(exc, EndpointConnectionError):
        return StorageError(f"{uri}: cannot reach S3 ({exc})", hint="check the network and source.region")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return StorageError(f"{uri}: bucket does not exist", hint="check the bucket name in source.uri")
        if code in ("NoSuchKey", "404", "NotFound"):
            return StorageError(f"{uri}: object not found")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            return CredentialsError(
                f"{uri}: access denied ({code})",
                hint="allow s3:ListBucket and s3:GetObject on it to the identity in use",
            )
        return StorageError(f"{uri}: S3 error {code}: {exc.response.get('Error', {}).get('Message', '')}")
    return StorageError(f"{uri}: {exc}")


def s3_files(uri: str, region: str | None = None) -> list[SourceFile]:
    """One object, or every object under the prefix (``uri`` read as a folder), in key order.

    Keys whose name starts with ``.`` or ``_`` (``_SUCCESS`` markers) and folder markers are skipped.
    """
    bucket, key = split_s3(uri)
    client = s3_client(region)
    objects: list[tuple[str, int, str]] = []
    try:
        if key and not key.endswith("/"):
            found = client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
            if found and found[0]["Key"] == key:
                objects = [(key, found[0]["Size"], found[0].get("ETag", ""))]
        if not objects:
            prefix = key.rstrip("/") + "/" if key else ""
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    name = item["Key"][len(prefix) :]
                    if name and not item["Key"].endswith("/") and not _hidden(name):
                        objects.append((item["Key"], item["Size"], item.get("ETag", "")))
    except Exception as exc:  # noqa: BLE001 - every boto failure becomes one clear message
        raise _s3_problem(exc, uri) from None
    if not objects:
        raise StorageError(f"{uri}: no object with this key and nothing under this prefix", hint="check source.uri")
    base = key.rstrip("/") + "/" if len(objects) > 1 or objects[0][0] != key else key.rsplit("/", 1)[0] + "/"
    return [
        SourceFile(
            where=f"s3://{bucket}/{object_key}",
            name=object_key[len(base) :] if object_key.startswith(base) else object_key.rsplit("/", 1)[-1],
            size=size,
            open=lambda k=object_key: _open_s3(client, bucket, k),
            version=f"{size}:{etag}",
        )
        for object_key, size, etag in objects
    ]


@contextmanager
def _open_s3(client, bucket: str, key: str) -> Iterator[IO[bytes]]:
    uri = f"s3://{bucket}/{key}"
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as exc:  # noqa: BLE001
        raise _s3_problem(exc, uri) from None
    from botocore.exceptions import BotoCoreError

    try:
        yield body
    except BotoCoreError as exc:  # the connection dropped or stalled while streaming the object
        raise StorageError(
            f"{uri}: reading the object failed ({exc})", hint="run the stage again; check the network path to S3"
        ) from None
    finally:
        body.close()


def source_files(path: str, region: str | None = None) -> list[SourceFile]:
    return s3_files(path, region) if is_s3(path) else local_files(path)
