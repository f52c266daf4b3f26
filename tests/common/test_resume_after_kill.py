"""A killed run loses nothing that had completed and resumes where it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from osft.common.runner import run_pipeline, run_status
from osft.common.stage import read_manifest

pytestmark = pytest.mark.slow


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"process ended early: {process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear in {timeout}s")
        time.sleep(0.05)


def test_killed_training_resumes_without_redoing_finished_stages(
    tmp_path: Path, tiny_corpus: Path, write_spec, tiny_spec
):
    spec = write_spec(tiny_spec(tiny_corpus, training={"max_steps": 40, "batch_size": 8, "checkpoint_steps": 1000}))
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "osft.common.cli", "run", str(spec), "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OSFT_LOG_JSON": "1"},
    )
    wait_for(run_dir / "train" / "_work" / ".fingerprint", process)
    time.sleep(1.0)  # inside training now: model loading and the first steps
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert read_manifest(str(run_dir), "querygen") is not None
    assert read_manifest(str(run_dir), "train") is None
    states = {s.stage: s.state for s in run_status(str(run_dir))}
    assert states["extract"] == "completed" and states["querygen"] == "completed"
    assert states["train"].startswith("interrupted")
    extract_manifest = (run_dir / "extract" / "manifest.json").read_bytes()

    write_spec(tiny_spec(tiny_corpus, training={"max_steps": 40, "batch_size": 8, "checkpoint_steps": 1000}))
    resumed = run_pipeline(str(spec), run_dir=str(run_dir))
    skipped = {o.stage: o.skipped for o in resumed.outcomes}
    assert skipped == {"extract": True, "querygen": True, "train": False, "evaluate": False}
    assert (run_dir / "extract" / "manifest.json").read_bytes() == extract_manifest
    assert resumed.manifest("train").counts["steps"] == 40


def test_stage_killed_before_its_manifest_leaves_no_partial_outputs_behind(
    tmp_path, tiny_corpus, write_spec, tiny_spec
):
    """Outputs are only trusted through a manifest; a stale partial folder is replaced on the next run."""
    spec = write_spec(tiny_spec(tiny_corpus))
    run_dir = tmp_path / "run"
    run_pipeline(str(spec), run_dir=str(run_dir), until="querygen")
    (run_dir / "querygen" / "manifest.json").unlink()  # as if killed just before writing it
    (run_dir / "querygen" / "train.jsonl").write_text('{"half": ')  # and a torn file
    rerun = run_pipeline(str(spec), run_dir=str(run_dir), until="querygen")
    assert {o.stage: o.skipped for o in rerun.outcomes} == {"extract": True, "querygen": False}
    lines = (run_dir / "querygen" / "train.jsonl").read_text().splitlines()
    assert lines and all(line.startswith('{"query_id"') for line in lines)
