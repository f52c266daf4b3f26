"""A corpus with bad lines: the error names file and line; skipping is an option, with a count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from osft.common.errors import InputDataError
from osft.common.stage import run_stage
from osft.extractor.stage import STAGE as EXTRACT


def corpus_with_bad_lines(tmp_path: Path) -> Path:
    lines = [json.dumps({"id": str(i), "title": f"t{i}", "text": f"document number {i} " * 10}) for i in range(6)]
    lines.insert(2, '{"id": "broken", "text": ')  # line 3: truncated JSON
    lines.insert(5, json.dumps({"id": "no-text", "title": "only a title"}))  # line 6: no text field
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_malformed_line_fails_naming_file_and_line(tmp_path: Path, write_spec) -> None:
    corpus = corpus_with_bad_lines(tmp_path)
    spec = write_spec({"name": "bad", "source": {"type": "local", "path": str(corpus)}})
    with pytest.raises(InputDataError) as caught:
        run_stage(EXTRACT, str(spec), str(tmp_path / "run"))
    assert f"{corpus}:3" in str(caught.value)


def test_missing_text_field_fails_naming_file_and_line(tmp_path: Path, write_spec) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "1", "title": "x", "body": "text elsewhere " * 10}) + "\n")
    spec = write_spec({"name": "bad", "source": {"type": "local", "path": str(corpus)}})
    with pytest.raises(InputDataError) as caught:
        run_stage(EXTRACT, str(spec), str(tmp_path / "run"))
    assert f"{corpus}:1" in str(caught.value) and "text" in str(caught.value)


def test_skip_option_skips_bad_lines_and_counts_them(tmp_path: Path, write_spec) -> None:
    corpus = corpus_with_bad_lines(tmp_path)
    spec = write_spec(
        {"name": "bad", "source": {"type": "local", "path": str(corpus), "bad_records": {"on_error": "skip"}}}
    )
    manifest, _ = run_stage(EXTRACT, str(spec), str(tmp_path / "run"))
    assert manifest.stats.documents_written == 6
    assert manifest.stats.skipped_bad_records == 2


def test_cli_prints_the_error_without_traceback(tmp_path: Path, write_spec) -> None:
    corpus = corpus_with_bad_lines(tmp_path)
    spec = write_spec({"name": "bad", "source": {"type": "local", "path": str(corpus)}})
    result = subprocess.run(
        [sys.executable, "-m", "osft.extractor.cli", "run", "--spec", str(spec), "--run-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert f"{corpus}:3" in result.stderr
    assert "Traceback" not in result.stderr
