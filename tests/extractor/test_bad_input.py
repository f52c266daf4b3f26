"""Bad input ends in one clear message naming what and where, or is skipped and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from osft.common.errors import InputDataError
from osft.common.stage import run_stage
from osft.extractor.cli import cli
from osft.extractor.stage import STAGE

GOOD = "a document with plenty of words and long enough to pass the filter"


def jsonl(path: Path, records: list[object]) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")


def test_a_malformed_json_line_is_named_by_file_and_line(write_spec, tmp_path):
    jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": GOOD}, '{"id": "b", "text": ', {"id": "c", "text": GOOD}])
    with pytest.raises(InputDataError, match=r"c\.jsonl:2: malformed JSON line") as caught:
        run_stage(STAGE, write_spec({"type": "local", "path": "c.jsonl"}), str(tmp_path / "run"))
    assert "on_error" in caught.value.render()


def test_bad_records_are_skipped_and_counted_by_reason(write_spec, tmp_path):
    jsonl(
        tmp_path / "c.jsonl",
        [
            {"id": "a", "text": GOOD},
            "{broken",
            "[1, 2]",
            {"id": "c", "body": "no text field"},
            {"text": GOOD + " again"},
        ],
    )
    spec = write_spec({"type": "local", "path": "c.jsonl", "bad_records": {"on_error": "skip"}})

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert manifest.stats.documents_written == 1
    assert manifest.stats.skipped_by_reason == {"malformed_json": 2, "missing_text": 1, "missing_id": 1}
    assert manifest.stats.skipped_bad_records == 4


def test_skipping_stops_past_max_skipped(write_spec, tmp_path):
    jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": GOOD}, "{x", "{y", "{z"])
    spec = write_spec({"type": "local", "path": "c.jsonl", "bad_records": {"on_error": "skip", "max_skipped": 2}})
    with pytest.raises(InputDataError, match=r"c\.jsonl:4: more than 2 bad records"):
        run_stage(STAGE, spec, str(tmp_path / "run"))


def test_a_missing_text_field_names_the_record_and_its_fields(write_spec, tmp_path):
    jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": GOOD}, {"id": "b", "content": GOOD}])
    with pytest.raises(
        InputDataError, match=r"c\.jsonl:2: no text in field\(s\) text \(record has: content, id\)"
    ) as caught:
        run_stage(STAGE, write_spec({"type": "local", "path": "c.jsonl"}), str(tmp_path / "run"))
    assert "source.fields" in caught.value.render()


def test_a_wrong_encoding_is_named_with_the_line_and_a_fix(write_spec, tmp_path):
    (tmp_path / "c.jsonl").write_bytes(
        json.dumps({"id": "a", "text": GOOD}).encode()
        + b"\n"
        + '{"id": "b", "text": "caf\u00e9 au lait, served warm in the morning"}'.encode("latin-1")
        + b"\n"
    )
    with pytest.raises(InputDataError, match=r"c\.jsonl:2: not valid utf-8") as caught:
        run_stage(STAGE, write_spec({"type": "local", "path": "c.jsonl"}), str(tmp_path / "run"))
    assert "source.encoding" in caught.value.render()


def test_a_declared_encoding_reads_latin1(write_spec, tmp_path):
    text = "caf\u00e9 au lait, served warm in the morning with bread"
    (tmp_path / "c.txt").write_bytes(text.encode("latin-1") + b"\n")
    manifest, _ = run_stage(
        STAGE, write_spec({"type": "local", "path": "c.txt", "encoding": "latin-1"}), str(tmp_path / "run")
    )
    assert manifest.stats.documents_written == 1


def test_a_utf16_file_read_as_utf8_says_so(write_spec, tmp_path):
    (tmp_path / "c.txt").write_text(GOOD + "\n", encoding="utf-16")
    with pytest.raises(InputDataError, match="file is UTF-16"):
        run_stage(STAGE, write_spec({"type": "local", "path": "c.txt"}), str(tmp_path / "run"))
    manifest, _ = run_stage(
        STAGE, write_spec({"type": "local", "path": "c.txt", "encoding": "utf-16"}), str(tmp_path / "run2")
    )
    assert manifest.stats.documents_written == 1


def test_an_empty_file_is_named_or_skipped(write_spec, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.jsonl").write_text("")
    jsonl(tmp_path / "in" / "full.jsonl", [{"id": "a", "text": GOOD}])
    with pytest.raises(InputDataError, match=r"empty\.jsonl: file is empty"):
        run_stage(STAGE, write_spec({"type": "local", "path": "in"}), str(tmp_path / "run"))
    spec = write_spec({"type": "local", "path": "in", "bad_records": {"on_error": "skip"}})
    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run2"))
    assert manifest.stats.skipped_by_reason == {"empty_file": 1}


def test_a_missing_path_is_named(write_spec, tmp_path):
    with pytest.raises(InputDataError, match="no such file or folder"):
        run_stage(STAGE, write_spec({"type": "local", "path": "nowhere.jsonl"}), str(tmp_path / "run"))


def test_a_csv_row_with_extra_fields_is_named(write_spec, tmp_path):
    (tmp_path / "c.csv").write_text(f"id,text\na,{GOOD}\nb,one,two\n")
    with pytest.raises(InputDataError, match=r"c\.csv:3: row has more fields than the header"):
        run_stage(
            STAGE, write_spec({"type": "local", "path": "c.csv", "fields": {"title": None}}), str(tmp_path / "run")
        )


def test_a_truncated_gzip_file_is_named(write_spec, tmp_path):
    import gzip

    data = gzip.compress(("\n".join(json.dumps({"id": str(i), "text": GOOD}) for i in range(500))).encode())
    (tmp_path / "c.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match="compressed data is corrupt or cut short"):
        run_stage(STAGE, write_spec({"type": "local", "path": "c.jsonl.gz"}), str(tmp_path / "run"))


def test_the_cli_prints_one_message_and_no_traceback(write_spec, tmp_path):
    jsonl(tmp_path / "c.jsonl", ['{"id": "b", "text": '])
    result = CliRunner().invoke(
        cli, ["run", "--spec", write_spec({"type": "local", "path": "c.jsonl"}), "--run-dir", str(tmp_path / "run")]
    )
    assert result.exit_code == InputDataError.exit_code
    assert "c.jsonl:1: malformed JSON line" in result.output
    assert "Traceback" not in result.output


def test_the_cli_reports_an_unreachable_opensearch_without_traceback(write_spec, tmp_path):
    from tests.extractor.conftest import opensearch_source

    spec = write_spec(opensearch_source("http://127.0.0.1:9", connection={"max_retries": 0}))
    result = CliRunner().invoke(cli, ["run", "--spec", spec, "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 6
    assert "cannot reach OpenSearch at http://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output


def test_a_password_in_the_spec_is_refused(write_spec, tmp_path):
    from osft.common.errors import SpecError

    source = {
        "type": "opensearch",
        "index": "x",
        "connection": {"url": "https://h", "auth": {"type": "basic", "username": "u", "password": "p"}},
    }
    with pytest.raises(SpecError, match="passwords are never read from the spec"):
        run_stage(STAGE, write_spec(source), str(tmp_path / "run"))


def test_an_opensearch_source_refuses_position_ids() -> None:
    from pydantic import ValidationError

    from osft.common.spec.source import OpenSearchSource

    with pytest.raises(ValidationError, match="id: null numbers documents by position"):
        OpenSearchSource(
            type="opensearch", connection={"url": "http://localhost:9200"}, index="docs", fields={"id": None}
        )
