"""Processes that run one stage together on a local run folder, as torchrun's ranks do."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from osft.common import stage as stage_module
from osft.common.stage import StageContext, StageResult, read_manifest, run_stage
from osft.extractor.stage import STAGE as EXTRACT

# A process that runs alone in the old critical section waits this long for a partner that cannot come.
PARTNER_WAIT_SECONDS = 3


def _rank(rank: int, spec: str, run_dir: str, read: threading.Barrier, started: threading.Barrier, errors) -> None:
    """One process of a forced re-run: it writes into the stage's work folder, waits for its partner to
    start too, and then checks that its file is still there."""
    os.environ.update(RANK=str(rank), WORLD_SIZE="2")
    read_manifest = stage_module.read_manifest

    def read_and_wait(run_dir: str, stage: str):
        # Both processes reading the completed manifest before either deletes it is the race: make it certain
        # when nothing orders them, and cost a short wait when something does.
        manifest = read_manifest(run_dir, stage)
        with contextlib.suppress(threading.BrokenBarrierError):
            read.wait(PARTNER_WAIT_SECONDS)
        return manifest

    def run(ctx: StageContext) -> StageResult:
        mine = ctx.work / f"rank-{rank}"
        mine.write_text("begun")
        started.wait(20)
        if not mine.exists():
            errors.put(f"rank {rank}: its work file was wiped by the other process")
        if ctx.forced_restart is None:  # what tells a trainer to discard checkpoints kept outside _work
            errors.put(f"rank {rank}: does not see that the run was forced to start over")
        if rank:
            raise SystemExit(0)  # as the trainer's other ranks do: rank 0 alone writes the outputs
        return EXTRACT.run(ctx)

    stage_module.read_manifest = read_and_wait
    try:
        run_stage(dataclasses.replace(EXTRACT, run=run), spec, run_dir, force=True)
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which runs in another process
        if not (isinstance(exc, SystemExit) and exc.code == 0):
            errors.put(f"rank {rank}: {exc!r}")


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forced_rerun_by_two_processes_keeps_both_their_work(tiny_corpus: Path, write_spec, tmp_path: Path) -> None:
    spec = str(write_spec({"name": "two-ranks", "source": {"type": "local", "path": str(tiny_corpus)}}))
    run_dir = str(tmp_path / "run")
    first, _ = run_stage(EXTRACT, spec, run_dir)

    context = multiprocessing.get_context("fork")
    read, started, errors = context.Barrier(2), context.Barrier(2), context.Queue()
    ranks = [context.Process(target=_rank, args=(r, spec, run_dir, read, started, errors)) for r in (0, 1)]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(120)
    reported = []
    while not errors.empty():
        reported.append(errors.get())

    assert not reported, reported
    assert [p.exitcode for p in ranks] == [0, 0]
    manifest = read_manifest(run_dir, "extract")
    assert manifest is not None and manifest.fingerprint == first.fingerprint
    assert manifest.timings.started_at > first.timings.started_at  # forced: it ran again
    work = Path(run_dir) / "extract" / "_work"
    assert sorted(p.name for p in work.glob("rank-*")) == ["rank-0", "rank-1"]
