"""A newcomer's slips at the command line: each ends in one clear message and a non-zero exit, never a
traceback; stopping a run (Ctrl-C, SIGTERM) and forcing a stage keep or redo exactly what they should."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from osft.common.cli import main
from osft.common.errors import InputDataError, OsftError, SpecError, StorageError
from osft.common.jsonl import read_jsonl
from osft.common.manifests import ExtractStats
from osft.common.runner import run_pipeline, run_status
from osft.common.spec import parse_spec_text
from osft.common.stage import StageContext, StageDefinition, StageResult, read_manifest, run_stage
from osft.common.storage import Location, atomic_path

VALID = {"name": "docs", "source": {"type": "local", "path": "corpus.jsonl"}}


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def spec_problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec_text(text, "spec.json")
    return caught.value.problems


# --- the spec file ---------------------------------------------------------------------------------------------


def test_trailing_comma_points_at_the_comma_not_the_brace_after_it() -> None:
    problems = spec_problems('{\n  "name": "docs",\n  "source": {"type": "local", "path": "c.jsonl"},\n}\n')
    assert problems == ["line 3 column 49: trailing comma before '}' (JSON allows none; remove it)"]


def test_comment_empty_file_and_extra_text_are_named() -> None:
    assert "line 2 column 3: JSON allows no comments" in spec_problems('{\n  // my run\n  "name": "x"}')[0]
    assert "the file is empty" in spec_problems("  \n")[0]
    assert "line 2 column 1: unexpected text after the end" in spec_problems('{"name": "x"}\n}')[0]


def test_a_key_given_twice_is_an_error_not_a_silent_overwrite() -> None:
    text = json.dumps(VALID)[:-1] + ',\n "querygen": {"queries_per_doc": 3,\n   "queries_per_doc": 4}}'
    assert spec_problems(text) == [
        "querygen.queries_per_doc: given more than once in the object at line 2 column 14; keep one"
    ]


def test_a_byte_order_mark_is_accepted_and_null_is_shown() -> None:
    assert parse_spec_text("\ufeff" + json.dumps(VALID)).name == "docs"
    assert spec_problems(json.dumps({**VALID, "name": None})) == ["name: Input should be a valid string (got null)"]


def test_spec_that_is_not_utf8_names_the_line_without_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_bytes(b'{\n  "name": "caf\xe9"}')
    result = invoke("validate", str(spec))
    assert result.exit_code == InputDataError.exit_code
    assert f"{spec}:2: not valid UTF-8: byte 0xe9 at column 15" in result.output


def test_estimate_refuses_two_different_specs(tmp_path: Path) -> None:
    result = invoke("estimate", str(tmp_path / "a.json"), "--spec", str(tmp_path / "b.json"))
    assert result.exit_code == 2
    assert f"two specs given, {tmp_path / 'a.json'} and --spec {tmp_path / 'b.json'}" in result.output


def test_empty_spec_argument_is_named() -> None:
    result = invoke("validate", "")
    assert result.exit_code == StorageError.exit_code and "no run spec given" in result.output


def test_missing_local_inputs_are_named_by_validate_and_before_a_run_starts(tmp_path: Path) -> None:
    """A judged split that is not there must not wait for the evaluate stage, after training, to be found."""
    (tmp_path / "corpus.jsonl").write_text("")
    (tmp_path / "judged" / "qrels").mkdir(parents=True)
    (tmp_path / "judged" / "queries.jsonl").write_text("")
    (tmp_path / "judged" / "qrels" / "dev.tsv").write_text("")
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({**VALID, "evaluation": {"judged": {"path": "judged"}}, "querygen": {"examples_path": "ex.jsonl"}})
    )

    for command in (["validate", str(spec)], ["run", str(spec), "--run-dir", str(tmp_path / "run")]):
        result = invoke(*command)
        assert result.exit_code == SpecError.exit_code, result.output
        assert f"evaluation.judged.split: {tmp_path}/judged/qrels/test.tsv: no such file (splits there: dev)" in (
            result.output
        )
        assert f"querygen.examples_path: {tmp_path}/ex.jsonl: no such file" in result.output
    assert not (tmp_path / "run").exists()


# --- the run folder --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--run-dir", "--runs-root"])
def test_run_folder_that_is_a_file_is_a_clear_error(tmp_path: Path, option: str) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID))
    (tmp_path / "corpus.jsonl").write_text("")
    (tmp_path / "afile").write_text("x")
    result = invoke("run", str(spec), option, str(tmp_path / "afile"), "--until", "extract")
    assert result.exit_code == StorageError.exit_code, result.output
    assert "afile" in result.output and ("is a file" in result.output or "cannot create" in result.output)


def test_status_of_a_missing_folder_or_a_file_is_an_error(tmp_path: Path) -> None:
    missing = invoke("status", str(tmp_path / "no-such-run"))
    assert missing.exit_code == StorageError.exit_code and "no run folder here" in missing.output
    (tmp_path / "afile").write_text("x")
    a_file = invoke("status", str(tmp_path / "afile"))
    assert a_file.exit_code == StorageError.exit_code and "is a file" in a_file.output


def test_status_of_a_runs_root_or_a_stage_folder_is_not_a_table_of_not_started(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        (tmp_path / "runs" / name / "extract").mkdir(parents=True)
        (tmp_path / "runs" / name / "spec.json").write_text("{}")

    root = invoke("status", str(tmp_path / "runs"))
    assert root.exit_code == StorageError.exit_code, root.output
    assert "not a run folder" in root.output and "give one of them: alpha, beta" in root.output
    stage = invoke("status", str(tmp_path / "runs" / "alpha" / "extract"))
    assert stage.exit_code == StorageError.exit_code and "not a run folder" in stage.output
    assert invoke("status", str(tmp_path / "runs" / "alpha")).exit_code == 0


def test_status_on_s3_sees_an_interrupted_stage(bucket: str) -> None:
    run_dir = f"s3://{bucket}/runs/x"
    Location(f"{run_dir}/querygen/_work/records.jsonl").write_text("{}\n")
    states = {s.stage: s.state for s in run_status(run_dir)}
    assert states["querygen"].startswith("interrupted") and states["extract"] == "not started"
    with pytest.raises(StorageError, match="no run folder here"):
        run_status(f"s3://{bucket}/runs/other")


def test_status_tells_a_stage_that_failed_from_one_that_was_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "text": "a document long enough to keep after cleaning"}\n{not json\n')
    run_dir = tmp_path / "run"

    failed = invoke("run", str(spec), "--run-dir", str(run_dir))
    status = invoke("status", str(run_dir))

    assert failed.exit_code == InputDataError.exit_code, failed.output
    assert "extract   failed (runs again on next run)" in status.output, status.output
    assert f"): {corpus}:2: malformed JSON line" in status.output and "\nerror (extract, 20" in status.output
    corpus.write_text('{"id": "a", "text": "a document long enough to keep after cleaning"}\n')
    assert invoke("run", str(spec), "--run-dir", str(run_dir), "--until", "extract").exit_code == 0
    assert run_status(str(run_dir))[0].state == "completed"
    assert not (run_dir / "extract" / "failure.json").exists(), "a stage that ran again forgets its failure"

    monkeypatch.setattr("osft.common.runner.load_stage", lambda name: counting_stage([], fail_after=1))
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(str(spec), run_dir=str(tmp_path / "killed"), until="extract")
    assert run_status(str(tmp_path / "killed"))[0].state == "interrupted (resumes on next run)"


def test_a_stage_run_on_its_own_records_its_failure_and_a_new_attempt_clears_it(tmp_path: Path) -> None:
    """`<stage> run` (ECS, a SageMaker job, by hand) goes through run_stage, not `osft run`: status sees it too."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID))
    run_dir = str(tmp_path / "run")

    def failing(ctx: StageContext) -> StageResult:
        raise InputDataError("nothing usable", path=ctx.spec_uri)

    with pytest.raises(InputDataError):
        run_stage(
            StageDefinition(name="extract", upstream=(), spec_sections=("source",), run=failing), str(spec), run_dir
        )
    [extract] = [s for s in run_status(run_dir) if s.stage == "extract"]
    assert extract.state == "failed (runs again on next run)" and "nothing usable" in (extract.error or "")

    with pytest.raises(KeyboardInterrupt):  # the next attempt, killed: interrupted, not the old failure
        run_stage(counting_stage([], fail_after=1), str(spec), run_dir)
    assert run_status(run_dir)[0].state == "interrupted (resumes on next run)"
    assert not (tmp_path / "run" / "extract" / "failure.json").exists()


def test_files_written_atomically_get_the_usual_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "manifest.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(umask)
    assert (tmp_path / "manifest.json").stat().st_mode & 0o777 == 0o666 & ~umask


# --- --force and --until ---------------------------------------------------------------------------------------


def test_force_that_would_do_nothing_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID))
    with pytest.raises(OsftError, match="no register stage"):
        run_pipeline(str(spec), run_dir=str(tmp_path / "run"), force=("register",))
    with pytest.raises(OsftError, match="--force train with --until querygen"):
        run_pipeline(str(spec), run_dir=str(tmp_path / "run"), force=("train",), until="querygen")
    assert not (tmp_path / "run").exists()


def test_a_run_folder_of_another_spec_is_refused_before_anything_is_overwritten(
    tmp_path: Path, tiny_corpus: Path
) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({"name": "first", "source": {"type": "local", "path": str(tiny_corpus)}}))
    second.write_text(json.dumps({"name": "second", "source": {"type": "local", "path": str(tiny_corpus)}}))
    run_dir = str(tmp_path / "runs" / "first")
    run_pipeline(str(first), run_dir=run_dir, until="extract")

    for command in (["run", str(second), "--run-dir", run_dir], ["estimate", str(second), "--run-dir", run_dir]):
        result = invoke(*command)
        assert result.exit_code == 1, result.output
        assert "holds the run of spec 'first', not of 'second'" in result.output
    assert json.loads((Path(run_dir) / "spec.json").read_text())["name"] == "first"
    assert read_manifest(run_dir, "extract").run_id == "first"


def counting_stage(calls: list[int], *, fail_after: int | None = None) -> StageDefinition:
    """An extract stage that counts, in _work, how many items it has done, resuming from that count."""

    def run(ctx: StageContext) -> StageResult:
        done_file = ctx.work / "done.txt"
        done = int(done_file.read_text()) if done_file.exists() else 0
        calls.append(done)
        for item in range(done, 3):
            if fail_after is not None and item == fail_after:
                raise KeyboardInterrupt
            done_file.write_text(str(item + 1))
            ctx.save_work()
        ctx.output_path("out.txt").write_text("ok")
        return StageResult(stats=ExtractStats(source="test"), outputs=["out.txt"])

    return StageDefinition(name="extract", upstream=(), spec_sections=("source",), run=run)


def test_forced_completed_stage_starts_over_and_an_interrupted_one_resumes(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID))
    run_dir = str(tmp_path / "run")
    calls: list[int] = []
    run_stage(counting_stage(calls), str(spec), run_dir)
    run_stage(counting_stage(calls), str(spec), run_dir, force=True)
    assert calls == [0, 0], "a forced re-run of a completed stage redoes its work"

    with pytest.raises(KeyboardInterrupt):
        run_stage(counting_stage(calls, fail_after=2), str(spec), run_dir, force=True)
    assert read_manifest(run_dir, "extract") is None
    run_stage(counting_stage(calls), str(spec), run_dir, force=True)  # the same command, run again
    assert calls == [0, 0, 0, 2], "an interrupted stage resumes, even when forced again"


def test_s3_work_of_another_attempt_is_removed_not_resumed(bucket: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID))
    run_dir = f"s3://{bucket}/runs/docs"
    Location(f"{run_dir}/extract/_work/.fingerprint").write_text("an older attempt")
    Location(f"{run_dir}/extract/_work/checkpoint-900/state.json").write_text("{}")
    calls: list[int] = []
    run_stage(counting_stage(calls), str(spec), run_dir)
    remote = [loc.uri.rsplit("/_work/", 1)[-1] for loc in Location(f"{run_dir}/extract/_work").list_files()]
    assert "checkpoint-900/state.json" not in remote and "done.txt" in remote


# --- stopping and unexpected OS errors -------------------------------------------------------------------------

STOPPABLE = """
import sys, time
from osft.common.manifests import ExtractStats
from osft.common.stage import StageDefinition, StageResult
from osft.common.stage_cli import stage_cli

def run(ctx):
    print("ready", flush=True)
    try:
        time.sleep(60)
    finally:
        (ctx.work / "saved.txt").write_text("progress")
    return StageResult(stats=ExtractStats(source="test"))

stage_cli(StageDefinition(name="extract", upstream=(), spec_sections=("source",), run=run))(sys.argv[1:])
"""


def test_sigterm_stops_a_stage_like_ctrl_c_and_its_cleanup_runs(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID))
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-c", STOPPABLE, "run", "--spec", str(spec), "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 128 + signal.SIGTERM
    assert "run again to resume" in err and "Traceback" not in err
    assert (run_dir / "extract" / "_work" / "saved.txt").read_text() == "progress"


def test_an_unexpected_os_error_is_a_message_not_a_traceback() -> None:
    code = (
        "from osft.common.stage_cli import report_errors\n"
        "report_errors(lambda: open('/no/such/folder/file.txt', 'w'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == StorageError.exit_code
    assert "error: /no/such/folder/file.txt: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


# --- JSON Lines files users give (judged queries, examples) ----------------------------------------------------


def test_jsonl_missing_truncated_gzip_bom_and_hint(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="file not found"):
        list(read_jsonl(tmp_path / "queries.jsonl"))

    lines = "".join(json.dumps({"_id": str(i), "text": os.urandom(8).hex()}) + "\n" for i in range(3000)).encode()
    packed = gzip.compress(lines)
    (tmp_path / "cut.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InputDataError, match="not a complete gzip file"):
        list(read_jsonl(tmp_path / "cut.jsonl.gz"))

    (tmp_path / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"_id": "q1"}\n')
    assert list(read_jsonl(tmp_path / "bom.jsonl")) == [{"_id": "q1"}]

    (tmp_path / "bad.jsonl").write_text('{"_id": "q1"}\n{"_id": \n')
    with pytest.raises(InputDataError) as caught:
        list(read_jsonl(tmp_path / "bad.jsonl"))
    assert caught.value.line == 2 and "bad_records" not in caught.value.render()


def test_the_first_error_of_an_attempt_is_the_one_kept(tmp_path: Path) -> None:
    """Another torchrun rank, or `osft run` after a SageMaker job, fails after the stage did: the cause stays."""
    from osft.common.failures import failure_recorded, read_failure

    with pytest.raises(InputDataError), failure_recorded(str(tmp_path), "train"):
        raise InputDataError("the cause", path="pairs.jsonl")
    with pytest.raises(OsftError), failure_recorded(str(tmp_path), "train", clear=False):
        raise OsftError("rank 0 failed; see its error")

    assert "the cause" in (read_failure(str(tmp_path), "train") or {})["error"]
