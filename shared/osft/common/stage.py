"""The stage contract: ``<stage> run --spec URI --run-dir URI`` locally, in ECS and in SageMaker.

A stage reads its upstream stages' manifests, works in a local folder, publishes its outputs
to ``<run_dir>/<stage>/`` and writes its manifest last. Re-running a stage whose manifest
fingerprint matches its inputs is a no-op. A killed stage leaves no manifest, so it runs
again; resumable progress it kept under ``_work/`` (and synced with ``save_work``) survives,
but only while the fingerprint is unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from osft.common import __version__
from osft.common.errors import OsftError, StageOrderError, StorageError
from osft.common.failures import failure_recorded
from osft.common.file_lock import held_exclusively
from osft.common.logging import get_logger
from osft.common.manifests import FileRecord, StageManifest, StageStats, Timings, manifest_type
from osft.common.processes import is_first_process, world_size
from osft.common.progress import progress
from osft.common.spec import RunSpec, parse_spec_text
from osft.common.storage import Location, is_s3, join, sha256_file, split_s3

STAGE_ORDER: tuple[str, ...] = ("extract", "querygen", "train", "evaluate", "register")
WORK_DIR = "_work"
MANIFEST_FILE = "manifest.json"
FORCED_RESTART_FILE = ".forced-restart"
T = TypeVar("T")


@dataclass
class StageResult:
    """What a stage's ``run`` function returns; ``outputs`` are paths relative to the stage folder."""

    stats: StageStats
    outputs: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StageDefinition:
    """A stage as the runner sees it.

    ``spec_sections`` are the spec fields whose values determine the outputs; changing any of
    them (or an upstream stage's outputs) makes the stage run again. ``input_fingerprint``
    adds what the spec cannot show, such as the size and time of the source files.
    ``version`` is bumped when the stage's logic changes its outputs. ``work_key`` names what
    the resumable ``_work/`` folder depends on, when that is less than everything: querygen's
    generated records stay valid when only its filters or split change.
    """

    name: str
    upstream: tuple[str, ...]
    spec_sections: tuple[str, ...]
    run: Callable[[StageContext], StageResult]
    version: str = "1"
    input_fingerprint: Callable[[StageContext], Any] | None = None
    work_key: Callable[[StageContext], Any] | None = None


def resolve_spec_path(spec_uri: str, path: str) -> str:
    """A path written in the spec at ``spec_uri``, resolved relative to the spec's own location."""
    if is_s3(path) or Path(path).is_absolute():
        return path
    if is_s3(spec_uri):
        return join(spec_uri.rsplit("/", 1)[0], path)
    return str((Path(spec_uri).parent / path).resolve())


def load_spec(spec_uri: str) -> RunSpec:
    if not spec_uri.strip():
        raise StorageError("no run spec given", hint="pass the path (or s3:// URI) of a run spec JSON file")
    return parse_spec_text(Location(spec_uri).read_text(), source=spec_uri)


def ensure_run_dir(run_dir: str) -> None:
    """Create a local run folder (S3 needs none); a clear error when the path cannot be a folder."""
    if is_s3(run_dir):
        split_s3(run_dir)
        return
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StorageError(
            f"{run_dir}: is a file, not a run folder", hint="give --run-dir a folder path (it is created when missing)"
        ) from None
    except OSError as exc:
        raise StorageError(
            f"{run_dir}: cannot create the run folder ({exc.strerror or exc})",
            hint="give --run-dir a folder path you can write to (part of this path may be a file)",
        ) from None


def read_manifest(run_dir: str, stage: str) -> StageManifest | None:
    """The stage's validated manifest, or None when the stage has not completed."""
    location = Location(join(run_dir, stage, MANIFEST_FILE))
    if not location.exists():
        return None
    try:
        return manifest_type(stage).model_validate_json(location.read_bytes())
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise StorageError(
            f"{location.uri}: manifest does not match the expected format ({exc.error_count()} problem(s);"
            f" first: {where}: {first['msg']})",
            hint="it was written by another osft version, or damaged; delete it to re-run the stage",
        ) from None


def package_versions(*names: str) -> dict[str, str]:
    versions = {"osft": __version__, "python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


class StageContext:
    """Everything a stage's logic needs: the spec, where to read and write, a logger."""

    def __init__(
        self,
        definition: StageDefinition,
        spec: RunSpec,
        spec_uri: str,
        run_dir: str,
        workdir: Path,
    ):
        self.definition = definition
        self.spec = spec
        self.spec_uri = spec_uri
        self.run_dir = run_dir
        self.workdir = workdir
        self.stage = definition.name
        self.log = get_logger(run_id=spec.name, stage=definition.name)
        self._cache = Path(tempfile.gettempdir()) / "osft-cache" / spec.name
        self._sent: dict[str, tuple[int, int]] = {}

    @property
    def forced_restart(self) -> str | None:
        """A token that changes with every forced re-run of the completed stage (None before the first).

        Progress kept outside ``_work`` (an ``OSFT_CHECKPOINT_DIR``) is stale once it changes. A file and
        not a flag: every process of the run sees it, the ones that found the manifest already gone too.
        """
        token = self.work / FORCED_RESTART_FILE
        return token.read_text() if token.exists() else None

    @property
    def work(self) -> Path:
        """Folder for resumable progress; kept across kills while the inputs are unchanged."""
        path = self.workdir / WORK_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolve(self, path: str) -> str:
        """A path written in the spec, resolved relative to the spec's own location."""
        return resolve_spec_path(self.spec_uri, path)

    def upstream(self, stage: str) -> StageManifest:
        manifest = read_manifest(self.run_dir, stage)
        if manifest is None:
            raise StageOrderError(
                f"stage '{self.stage}' needs the outputs of '{stage}', which has not completed in {self.run_dir}",
                hint=f"run '{stage} run --spec ... --run-dir {self.run_dir}' first, or 'osft run' for the whole pipeline",
            )
        return manifest

    def input_path(self, relative: str) -> Path:
        """A local path for a file or folder that an earlier stage wrote (downloaded when on S3)."""
        return Location(join(self.run_dir, relative)).fetch(self._cache)

    def output_path(self, relative: str) -> Path:
        path = self.workdir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def save_work(self) -> None:
        """Sync resumable progress to the run folder when it is on S3 (local run folders need nothing)."""
        if is_s3(self.run_dir):
            Location(join(self.run_dir, self.stage, WORK_DIR)).mirror(self.work, self._sent)

    def progress(self, iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
        return progress(iterable, desc=f"{self.stage}: {desc}", total=total, unit=unit)


def compute_fingerprint(ctx: StageContext, upstream: dict[str, StageManifest]) -> str:
    definition = ctx.definition
    material = {
        "stage": definition.name,
        "version": definition.version,
        "spec": {name: _dump(getattr(ctx.spec, name)) for name in definition.spec_sections},
        # Content-addressed: what an upstream stage wrote, not how it was asked. A re-run that writes the
        # same files leaves later stages done; one that writes different files re-runs them.
        "upstream": {name: sorted((o.path, o.sha256) for o in m.outputs) for name, m in sorted(upstream.items())},
        "inputs": definition.input_fingerprint(ctx) if definition.input_fingerprint else None,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def compute_work_key(ctx: StageContext, upstream: dict[str, StageManifest], fingerprint: str) -> str:
    """The key under which ``_work/`` is kept: the fingerprint, or the narrower ``work_key`` material."""
    if ctx.definition.work_key is None:
        return fingerprint
    material = {
        "version": ctx.definition.version,
        "upstream": {name: sorted((o.path, o.sha256) for o in m.outputs) for name, m in sorted(upstream.items())},
        "work": ctx.definition.work_key(ctx),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _dump(value: Any) -> Any:
    return value.fingerprint_material() if hasattr(value, "fingerprint_material") else value


def _prepare_workdir(run_dir: str, stage: str, work_key: str, *, fresh: bool = False) -> Path:
    """The local folder the stage writes into; wiped when its work key changed since the last attempt
    or when ``fresh`` (a forced re-run of a completed stage starts over instead of resuming)."""
    remote_work = Location(join(run_dir, stage, WORK_DIR))
    if is_s3(run_dir):
        workdir = Path(tempfile.mkdtemp(prefix=f"osft-{stage}-"))
        if not fresh and remote_work.list_files():
            shutil.copytree(remote_work.fetch(workdir / ".download"), workdir / WORK_DIR, dirs_exist_ok=True)
            shutil.rmtree(workdir / ".download", ignore_errors=True)
    else:
        workdir = Path(run_dir) / stage
    marker = workdir / WORK_DIR / ".fingerprint"
    if workdir.exists() and (fresh or not marker.exists() or marker.read_text() != work_key):
        shutil.rmtree(workdir)
        if is_s3(run_dir) and _deletes_shared_files(run_dir):
            # Not left for the first save_work to mirror away: an attempt killed before it would fetch them again.
            remote_work.delete_tree()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(work_key)
    if fresh:
        (workdir / WORK_DIR / FORCED_RESTART_FILE).write_text(uuid.uuid4().hex)
    return workdir


def _deletes_shared_files(run_dir: str) -> bool:
    """Locally, processes take turns (``_one_process_at_a_time``); on S3 only torchrun's rank 0 deletes."""
    return not is_s3(run_dir) or is_first_process()


@contextlib.contextmanager
def _one_process_at_a_time(run_dir: str, stage: str) -> Iterator[None]:
    """Processes that run one stage together (torchrun's ranks) take turns deciding what to keep.

    With a local run folder they share the stage folder. Had both read the completed manifest of a
    forced re-run, both would start afresh, and the later one would wipe what the earlier had begun
    to write. In turns, the later one finds the manifest gone and the work marked as current. (With
    an S3 run folder each process works in a folder of its own, and only the first deletes on S3.) A
    lone process takes no lock, so a read-only run folder still serves a stage that is up to date.
    """
    if is_s3(run_dir) or world_size() <= 1:
        yield
        return
    with held_exclusively(Path(run_dir) / f".{stage}.lock"):
        yield


def _normalized_run_dir(run_dir: str) -> str:
    """One spelling per run folder: no trailing slash on S3, an absolute path locally."""
    return run_dir.rstrip("/") if is_s3(run_dir) else str(Path(run_dir).resolve())


def _probe(
    definition: StageDefinition, spec: RunSpec, spec_uri: str, run_dir: str
) -> tuple[StageContext, dict[str, StageManifest], str]:
    """A context that writes nothing, the upstream manifests, and the stage's fingerprint now."""
    probe = StageContext(definition, spec, spec_uri, run_dir, Path(tempfile.gettempdir()))
    upstream = {name: probe.upstream(name) for name in definition.upstream}
    return probe, upstream, compute_fingerprint(probe, upstream)


def is_up_to_date(definition: StageDefinition, manifest: StageManifest, spec_uri: str, run_dir: str) -> bool:
    """Whether ``manifest`` is what the stage would write now (the run would skip it)."""
    run_dir = _normalized_run_dir(run_dir)
    try:
        return _probe(definition, load_spec(spec_uri), spec_uri, run_dir)[2] == manifest.fingerprint
    except OsftError as exc:
        # An upstream stage is missing or an input cannot be read here: not up to date. Said, because a
        # SageMaker stage then runs again although its job (another role) could read the input.
        get_logger(stage=definition.name).warning("fingerprint_not_computed", error=exc.render())
        return False


def run_stage(
    definition: StageDefinition, spec_uri: str, run_dir: str, *, force: bool = False
) -> tuple[StageManifest, bool]:
    """Run one stage unless its manifest already matches its inputs. Returns (manifest, skipped).

    An error leaves ``<stage>/failure.json`` (see ``osft.common.failures``); the next attempt clears it.
    """
    spec = load_spec(spec_uri)
    run_dir = _normalized_run_dir(run_dir)
    ensure_run_dir(run_dir)
    # The ranks of one torchrun job share the record: only the first clears it, lest a late rank clear the cause.
    with failure_recorded(run_dir, definition.name, clear=is_first_process()):
        return _run_stage(definition, spec, spec_uri, run_dir, force=force)


def _run_stage(
    definition: StageDefinition, spec: RunSpec, spec_uri: str, run_dir: str, *, force: bool
) -> tuple[StageManifest, bool]:
    probe, upstream, fingerprint = _probe(definition, spec, spec_uri, run_dir)

    with _one_process_at_a_time(run_dir, definition.name):
        existing = read_manifest(run_dir, definition.name)
        if existing is not None and existing.fingerprint == fingerprint and not force:
            probe.log.info(
                "stage_skipped", reason="outputs match inputs", manifest=join(run_dir, definition.name, MANIFEST_FILE)
            )
            return existing, True
        if existing is not None and _deletes_shared_files(run_dir):
            Location(join(run_dir, definition.name, MANIFEST_FILE)).delete_tree()

        # Forcing a completed stage redoes its work (cached LLM records, checkpoints); an interrupted
        # one, even forced again (the same command re-run), resumes from what it kept.
        fresh = force and existing is not None
        work_key = compute_work_key(probe, upstream, fingerprint)
        workdir = _prepare_workdir(run_dir, definition.name, work_key, fresh=fresh)
    ctx = StageContext(definition, spec, spec_uri, run_dir, workdir)
    ctx.log.info("stage_started", run_dir=run_dir)
    started, clock = datetime.now(UTC), time.perf_counter()
    result = definition.run(ctx)
    seconds = time.perf_counter() - clock

    outputs = []
    for relative in result.outputs:
        local = workdir / relative
        target = Location(join(run_dir, definition.name, relative))
        if is_s3(run_dir):
            target.publish(local)
        outputs.extend(_records(local, f"{definition.name}/{relative}"))
    inputs = [record for m in upstream.values() for record in m.outputs]
    manifest = manifest_type(definition.name)(
        stage=definition.name,
        run_id=spec.name,
        fingerprint=fingerprint,
        inputs=inputs,
        outputs=outputs,
        counts=result.counts,
        timings=Timings(
            started_at=started, finished_at=datetime.now(UTC), seconds=round(seconds, 3), steps=result.steps
        ),
        versions=package_versions("torch", "sentence-transformers", "transformers", "boto3", "opensearch-py"),
        notes=result.notes,
        stats=result.stats,
    )
    Location(join(run_dir, definition.name, MANIFEST_FILE)).write_text(manifest.model_dump_json(indent=2))
    ctx.log.info("stage_completed", seconds=round(seconds, 1), **result.counts)
    return manifest, False


def _records(local: Path, relative: str) -> list[FileRecord]:
    if local.is_dir():
        return [
            FileRecord(
                path=f"{relative}/{p.relative_to(local).as_posix()}", sha256=sha256_file(p), bytes=p.stat().st_size
            )
            for p in sorted(local.rglob("*"))
            if p.is_file()
        ]
    if not local.exists():
        raise StorageError(f"stage output {relative} was declared but not written")
    return [FileRecord(path=relative, sha256=sha256_file(local), bytes=local.stat().st_size)]
