"""One small interface over local paths and ``s3://`` URIs.

Stages work on local files: ``fetch`` brings an object to a local cache path and ``publish``
sends a finished local file or folder to its destination. Local destinations are written
under a temporary name and renamed, so a killed writer never leaves a half-written file
behind; S3 PutObject is atomic already.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from osft.common.errors import CredentialsError, InputDataError, StorageError


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, while only one thread runs: os.umask can only be read by setting it.
_FILE_MODE = 0o666 & ~_current_umask()


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def join(base: str, *parts: str) -> str:
    """Join path segments onto a local path or an s3:// URI."""
    if is_s3(base):
        return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts if p]])
    return str(Path(base, *parts))


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise StorageError(f"{uri}: not an s3://bucket/key URI")
    return bucket, key


def _split_s3_object(uri: str) -> tuple[str, str]:
    """Bucket and key of a URI that must name one object, not a whole bucket."""
    bucket, key = split_s3(uri)
    if not key:
        raise StorageError(f"{uri}: names a bucket, not a file", hint="give the full s3://bucket/key of the file")
    return bucket, key


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates the file readable by its owner only; a finished file gets the usual mode
    # (umask applied), like every other file a stage writes, so a container running as another
    # user can read the run folder.
    os.chmod(tmp_path, _FILE_MODE)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def s3_client(region: str | None = None):
    """A boto3 S3 client with adaptive retries (the endpoint can be overridden for tests and moto)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 10, "mode": "adaptive"})
    return boto3.client("s3", region_name=region, config=config, endpoint_url=os.environ.get("OSFT_S3_ENDPOINT_URL"))


def _s3_error(exc: Exception, uri: str) -> Exception:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return CredentialsError(f"{uri}: no AWS credentials found", hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return StorageError(f"{uri}: object not found")
        if code in ("NoSuchBucket",):
            return StorageError(f"{uri}: bucket does not exist")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return CredentialsError(f"{uri}: access denied ({code})", hint="check the IAM policy for this bucket")
        return StorageError(f"{uri}: S3 error {code}: {exc}")
    return StorageError(f"{uri}: {exc}")


def _folder_prefix(key: str) -> str:
    """The S3 prefix of the objects inside ``key`` taken as a folder ("" for the bucket root)."""
    return key.rstrip("/") + "/" if key.strip("/") else ""


def _download_if_changed(client, bucket: str, key: str, etag: str, dest: Path, tag_file: Path) -> None:
    """Download ``key`` to ``dest`` unless ``dest`` holds the version whose ETag ``tag_file`` records."""
    if etag and dest.exists() and tag_file.exists() and tag_file.read_text() == etag:
        return  # an object without an ETag is always downloaded again
    with atomic_path(dest) as tmp:
        client.download_file(bucket, key, str(tmp))
    with atomic_path(tag_file) as tmp:
        tmp.write_text(etag)


@dataclass(frozen=True)
class Location:
    """A file or folder, local or on S3."""

    uri: str

    def child(self, *parts: str) -> Location:
        return Location(join(self.uri, *parts))

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def local(self) -> Path:
        if is_s3(self.uri):
            raise StorageError(f"{self.uri}: not a local path")
        return Path(self.uri)

    def exists(self) -> bool:
        if not is_s3(self.uri):
            return Path(self.uri).exists()
        bucket, key = _split_s3_object(self.uri)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        except Exception as exc:  # noqa: BLE001 - mapped below
            mapped = _s3_error(exc, self.uri)
            if isinstance(mapped, StorageError) and "not found" in mapped.message:
                return False
            raise mapped from None

    def content_version(self) -> str | None:
        """What changes when the file's content does, without reading it from S3: the object's ETag there, the
        SHA-256 of the file here; None when there is no such file."""
        if not is_s3(self.uri):
            path = Path(self.uri)
            return sha256_file(path) if path.is_file() else None
        bucket, key = _split_s3_object(self.uri)
        try:
            return s3_client().head_object(Bucket=bucket, Key=key)["ETag"]
        except Exception as exc:  # noqa: BLE001 - mapped below
            mapped = _s3_error(exc, self.uri)
            if isinstance(mapped, StorageError) and "not found" in mapped.message:
                return None
            raise mapped from None

    def read_bytes(self) -> bytes:
        if not is_s3(self.uri):
            try:
                return Path(self.uri).read_bytes()
            except FileNotFoundError:
                raise StorageError(f"{self.uri}: file not found") from None
            except OSError as exc:
                raise StorageError(f"{self.uri}: cannot read ({exc.strerror})") from None
        bucket, key = _split_s3_object(self.uri)
        try:
            return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, self.uri) from None

    def read_text(self) -> str:
        data = self.read_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise InputDataError(
                f"not valid UTF-8: byte 0x{data[exc.start]:02x} at column {column}",
                path=self.uri,
                line=line,
                hint="save the file as UTF-8",
            ) from None

    def write_bytes(self, data: bytes) -> None:
        if not is_s3(self.uri):
            try:
                with atomic_path(Path(self.uri)) as tmp:
                    tmp.write_bytes(data)
            except OSError as exc:
                raise StorageError(
                    f"{self.uri}: cannot write ({exc.strerror or exc})",
                    hint="check that its folder is a folder you can write to, and that the disk has space",
                ) from None
            return
        bucket, key = _split_s3_object(self.uri)
        try:
            s3_client().put_object(Bucket=bucket, Key=key, Body=data)
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, self.uri) from None

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def has_content(self) -> bool:
        """Whether anything is here: a file or folder locally; on S3 an object at, or any object below, this URI.

        ``exists`` asks S3 for one object, and an S3 "folder" is only a prefix, so it is never found that way.
        """
        if not is_s3(self.uri):
            return Path(self.uri).exists()
        bucket, key = split_s3(self.uri)
        try:
            listed = s3_client().list_objects_v2(Bucket=bucket, Prefix=_folder_prefix(key), MaxKeys=1)
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, self.uri) from None
        return bool(listed.get("Contents")) or (bool(key.strip("/")) and self.exists())

    def list_files(self) -> list[Location]:
        """Every file below this folder or prefix (recursively), sorted by URI."""
        if not is_s3(self.uri):
            root = Path(self.uri)
            if root.is_file():
                return [self]
            return sorted((Location(str(p)) for p in root.rglob("*") if p.is_file()), key=lambda loc: loc.uri)
        bucket, _ = split_s3(self.uri)
        return [Location(f"s3://{bucket}/{key}") for key, _ in self._s3_tree()]

    @contextmanager
    def open_read(self) -> Iterator[IO[bytes]]:
        """Stream the object's bytes without loading it all in memory."""
        if not is_s3(self.uri):
            try:
                with open(self.uri, "rb") as handle:
                    yield handle
            except FileNotFoundError:
                raise StorageError(f"{self.uri}: file not found") from None
            return
        bucket, key = _split_s3_object(self.uri)
        try:
            body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, self.uri) from None
        try:
            yield body
        finally:
            body.close()

    def fetch(self, cache_dir: Path) -> Path:
        """A local path holding this file or folder: itself when local, a cached download when on S3.

        A cached copy is kept only while its object's ETag is unchanged, so an object overwritten
        in place (a stage run again, an edited input) is downloaded again; files gone from an S3
        folder are removed from its cached copy.
        """
        if not is_s3(self.uri):
            return Path(self.uri)
        bucket, key = split_s3(self.uri)
        target = cache_dir / bucket / key.lstrip("/")
        tags = cache_dir / ".etags" / bucket
        client = s3_client()
        objects = self._s3_tree()
        try:
            if objects and objects[0][0] == key:
                _download_if_changed(client, bucket, key, objects[0][1], target, tags / key.lstrip("/"))
                return target
            folder = _folder_prefix(key)
            wanted: set[Path] = set()
            for item_key, etag in objects:
                dest = target / item_key[len(folder) :].lstrip("/")
                if not dest.resolve().is_relative_to(target.resolve()):
                    raise StorageError(f"s3://{bucket}/{item_key}: key leaves the folder being fetched")
                wanted.add(dest)
                _download_if_changed(client, bucket, item_key, etag, dest, tags / item_key.lstrip("/"))
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, self.uri) from None
        if not objects:
            raise StorageError(f"{self.uri}: nothing found at this S3 prefix")
        # Dot-files are downloads in progress (atomic_path's and boto3's temporary names): leave them.
        for stale in [p for p in target.rglob("*") if p.is_file() and p not in wanted and not p.name.startswith(".")]:
            stale.unlink(missing_ok=True)
        return target

    def _s3_tree(self) -> list[tuple[str, str]]:
        """(key, ETag) of the object at this URI, or else of every object inside it as a folder, sorted by key.

        S3 prefixes match any key that starts with them: ``runs/x/model`` also lists ``runs/x/model2/...``,
        so a folder is listed as ``key/`` and an exact key wins over everything below it.
        """
        bucket, key = split_s3(self.uri)
        found: list[tuple[str, str]] = []
        try:
            paginator = s3_client().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=key):
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):
                        found.append((item["Key"], item.get("ETag", "")))
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, self.uri) from None
        exact = [item for item in found if item[0] == key]
        if exact:
            return exact
        folder = _folder_prefix(key)
        return sorted(item for item in found if item[0].startswith(folder))

    def publish(self, source: Path) -> None:
        """Copy a local file or folder here. Local folders are swapped in whole by rename."""
        if not is_s3(self.uri):
            dest = Path(self.uri)
            if source.resolve() == dest.resolve():
                return
            if source.is_dir():
                staging = dest.with_name(f".{dest.name}.staging")
                shutil.rmtree(staging, ignore_errors=True)
                shutil.copytree(source, staging)
                if dest.exists():
                    shutil.rmtree(dest)
                os.replace(staging, dest)
            else:
                with atomic_path(dest) as tmp:
                    shutil.copyfile(source, tmp)
            return
        bucket, key = split_s3(self.uri)
        client = s3_client()
        try:
            if source.is_dir():
                prefix = _folder_prefix(key)
                sent = {prefix + p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()}
                for item_key in sorted(sent):
                    client.upload_file(str(source / item_key.removeprefix(prefix)), bucket, item_key)
                # Like the local swap: files an earlier publish left here (a re-run's outputs, say without
                # an export it had before) must not be fetched with the new ones. Never a whole bucket.
                stale = Location(f"s3://{bucket}/{prefix}")._s3_tree() if prefix else []
                for item_key, _ in stale:
                    if item_key not in sent:
                        client.delete_object(Bucket=bucket, Key=item_key)
            else:
                client.upload_file(str(source), bucket, key)
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, self.uri) from None

    def mirror(self, source: Path, sent: dict[str, tuple[int, int]]) -> None:
        """Make this S3 folder hold exactly the files of the local folder ``source``.

        Uploads the files that are new or changed since this process last sent them (``sent``: relative
        path → (size, mtime), updated here) and deletes remote files gone locally, so checkpoints the
        trainer rotated out do not pile up on S3 and a resume downloads only what is current.
        """
        bucket, key = split_s3(self.uri)
        prefix = _folder_prefix(key)
        local = {p.relative_to(source).as_posix(): p for p in sorted(source.rglob("*")) if p.is_file()}
        client = s3_client()
        try:
            for name, path in local.items():
                stat = path.stat()
                if sent.get(name) != (stat.st_size, stat.st_mtime_ns):
                    client.upload_file(str(path), bucket, prefix + name)
                    sent[name] = (stat.st_size, stat.st_mtime_ns)
            for remote_key, _ in self._s3_tree():
                name = remote_key.removeprefix(prefix)
                if name not in local:
                    client.delete_object(Bucket=bucket, Key=remote_key)
                    sent.pop(name, None)
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, self.uri) from None

    def delete_tree(self) -> None:
        if not is_s3(self.uri):
            path = Path(self.uri)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            return
        bucket, _ = split_s3(self.uri)
        client = s3_client()
        for item in self.list_files():
            try:
                client.delete_object(Bucket=bucket, Key=split_s3(item.uri)[1])
            except Exception as exc:  # noqa: BLE001
                raise _s3_error(exc, item.uri) from None
