"""Bad input ends in one clear message naming what and where, or is skipped and counted."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
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


def test_a_lone_surrogate_escape_becomes_a_replacement_character(write_spec, tmp_path):
    # Valid JSON, but not valid Unicode: "\ud800" once crashed hashing and writing with a traceback.
    (tmp_path / "c.jsonl").write_text('{"id": "a\\udc80", "text": "' + GOOD + ' \\ud800 end"}\n')
    manifest, _ = run_stage(STAGE, write_spec({"type": "local", "path": "c.jsonl"}), str(tmp_path / "run"))
    with gzip.open(tmp_path / "run" / "extract" / manifest.stats.shards[0], "rt", encoding="utf-8") as handle:
        doc = json.loads(handle.readline())
    assert doc["id"] == "a\ufffd" and doc["text"].endswith("\ufffd end")


def test_a_lone_surrogate_in_a_labelled_pair_is_replaced(write_spec, tmp_path):
    (tmp_path / "p.jsonl").write_text('{"query": "what \\ud800", "passage": "' + GOOD + '"}\n')
    manifest, _ = run_stage(STAGE, write_spec({"type": "pairs", "path": "p.jsonl"}), str(tmp_path / "run"))
    assert manifest.stats.pairs_written == 1


@pytest.mark.parametrize(
    "content",
    [
        f'[\n  {{"id": "a", "text": "{GOOD}"}},\n  {{"id": "b", "text": "{GOOD} too"}}\n]\n',
        f'[{{"id": "a", "text": "{GOOD}"}}, {{"id": "b", "text": "{GOOD} too"}}]',
        f'{{\n  "id": "a",\n  "text": "{GOOD}"\n}}\n',
    ],
    ids=["pretty-array", "one-line-array", "pretty-object"],
)
def test_a_json_document_is_refused_as_json_lines_even_when_skipping(write_spec, tmp_path, content):
    # Read line by line, the last element of a pretty-printed array parsed on its own: one document, silently.
    (tmp_path / "c.json").write_text(content)
    spec = write_spec({"type": "local", "path": "c.json", "bad_records": {"on_error": "skip"}})
    with pytest.raises(InputDataError, match=r"c\.json: the file is a JSON array or pretty-printed JSON") as caught:
        run_stage(STAGE, spec, str(tmp_path / "run"))
    assert "jq -c" in caught.value.render()


def test_a_quoted_tsv_as_pandas_writes_it_is_read_and_a_stray_quote_never_swallows_rows(write_spec, tmp_path):
    rows = [f'a\t"say ""hi"" {GOOD}"', f'b\t"a tab\tinside {GOOD}"', f"c\t{GOOD}"]
    (tmp_path / "c.tsv").write_text("id\ttext\n" + "\n".join(rows) + "\n")
    source = {"type": "local", "path": "c.tsv", "fields": {"title": None}}
    manifest, _ = run_stage(STAGE, write_spec(source), str(tmp_path / "run"))
    with gzip.open(tmp_path / "run" / "extract" / manifest.stats.shards[0], "rt", encoding="utf-8") as handle:
        docs = {d["id"]: d["text"] for d in map(json.loads, handle)}
    assert docs == {"a": f'say "hi" {GOOD}', "b": f"a tab inside {GOOD}", "c": GOOD}

    rows = [f'a\t"Quoted" words {GOOD}', f"b\t{GOOD} two", f"c\t{GOOD} three"]
    (tmp_path / "c.tsv").write_text("id\ttext\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputDataError, match=r"c\.tsv:2: cannot parse"):
        run_stage(STAGE, write_spec(source), str(tmp_path / "r2"))
    manifest, _ = run_stage(STAGE, write_spec({**source, "bad_records": {"on_error": "skip"}}), str(tmp_path / "r3"))
    assert manifest.stats.documents_written == 2 and manifest.stats.skipped_by_reason == {"malformed_csv": 1}


def test_a_tsv_row_with_an_unquoted_tab_in_its_text_is_named(write_spec, tmp_path):
    (tmp_path / "c.tsv").write_text(f"id\ttext\na\t{GOOD}\tmore\n")
    spec = write_spec({"type": "local", "path": "c.tsv", "fields": {"title": None}})
    with pytest.raises(InputDataError, match=r"c\.tsv:2: row has more fields than the header \(2\)") as caught:
        run_stage(STAGE, spec, str(tmp_path / "run"))
    assert "a tab in TSV" in caught.value.render()


def test_a_csv_quote_never_closed_is_named_where_it_opens(write_spec, tmp_path):
    rows = [f'a,"quoted, over\ntwo lines {GOOD}"', f'b,"never closed {GOOD}'] + [f"c{i},{GOOD} {i}" for i in range(3)]
    (tmp_path / "c.csv").write_text("id,text\n" + "\n".join(rows) + "\n")
    source = {"type": "local", "path": "c.csv", "fields": {"title": None}}
    with pytest.raises(InputDataError, match=r"c\.csv:4: a quoted field that starts on line 4 is never closed"):
        run_stage(STAGE, write_spec(source), str(tmp_path / "run"))
    manifest, _ = run_stage(STAGE, write_spec({**source, "bad_records": {"on_error": "skip"}}), str(tmp_path / "r2"))
    assert manifest.stats.documents_written == 1
    assert manifest.stats.skipped_by_reason == {"malformed_csv": 1}


def test_a_csv_field_with_text_after_its_closing_quote_is_named(write_spec, tmp_path):
    (tmp_path / "c.csv").write_text(f'id,text\na,{GOOD}\nb,"half" quoted {GOOD}\n')
    spec = write_spec({"type": "local", "path": "c.csv", "fields": {"title": None}})
    with pytest.raises(InputDataError, match=r"c\.csv:3: cannot parse \(',' expected after '\"'\)"):
        run_stage(STAGE, spec, str(tmp_path / "run"))


def test_a_binary_parquet_text_column_is_decoded_not_written_as_a_bytes_repr(write_spec, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Writers that store strings without a UTF-8 annotation give binary columns.
    texts = [GOOD.encode(), f"caf\u00e9 {GOOD}".encode("latin-1")]
    pq.write_table(pa.table({"id": ["a", "b"], "text": pa.array(texts, pa.binary())}), tmp_path / "c.parquet")
    source = {"type": "local", "path": "c.parquet", "fields": {"title": None}}
    with pytest.raises(InputDataError, match=r"c\.parquet:2: a binary column is not valid utf-8"):
        run_stage(STAGE, write_spec(source), str(tmp_path / "run"))
    manifest, _ = run_stage(STAGE, write_spec({**source, "encoding": "latin-1"}), str(tmp_path / "r2"))
    with gzip.open(tmp_path / "r2" / "extract" / manifest.stats.shards[0], "rt", encoding="utf-8") as handle:
        assert sorted(json.loads(line)["text"] for line in handle) == [GOOD, f"caf\u00e9 {GOOD}"]


def test_a_parquet_file_corrupt_past_its_footer_is_named(write_spec, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(500)], "text": [f"{GOOD} {i}" for i in range(500)]}), path)
    data = bytearray(path.read_bytes())
    data[100:300] = bytes(200)  # inside the first data page; the footer still reads
    path.write_bytes(bytes(data))
    spec = write_spec({"type": "local", "path": "c.parquet", "fields": {"title": None}})
    with pytest.raises(InputDataError, match=r"c\.parquet: not a readable Parquet file: it fails after row 0"):
        run_stage(STAGE, spec, str(tmp_path / "run"))


def test_an_s3_object_cut_off_while_streaming_is_named(aws_env, write_spec, tmp_path, monkeypatch):
    import boto3
    from botocore.exceptions import ResponseStreamingError
    from botocore.response import StreamingBody
    from moto import mock_aws

    from osft.common.errors import StorageError

    def dropped(self, amt=None):
        raise ResponseStreamingError(error="Connection broken: IncompleteRead(0 bytes read)")

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="corpus-bucket")
        s3.put_object(Bucket="corpus-bucket", Key="c.jsonl", Body=json.dumps({"id": "a", "text": GOOD}).encode())
        monkeypatch.setattr(StreamingBody, "read", dropped)
        spec = write_spec({"type": "s3", "uri": "s3://corpus-bucket/c.jsonl"})
        with pytest.raises(StorageError, match=r"s3://corpus-bucket/c\.jsonl: reading the object failed"):
            run_stage(STAGE, spec, str(tmp_path / "run"))


@pytest.mark.parametrize(("kind", "compress"), [("bzip2", bz2.compress), ("xz", lzma.compress)])
def test_a_file_compressed_other_than_gzip_is_named_not_read_as_text(write_spec, tmp_path, kind, compress):
    (tmp_path / "c.txt").write_bytes(compress((GOOD + "\n").encode() * 50))
    # latin-1 decodes any byte: the compressed bytes once became one junk document per "line".
    spec = write_spec({"type": "local", "path": "c.txt", "encoding": "latin-1"})
    with pytest.raises(InputDataError, match=rf"c\.txt: the file is {kind}-compressed; only gzip is read"):
        run_stage(STAGE, spec, str(tmp_path / "run"))


def test_a_text_starting_like_a_bzip2_header_is_still_text(write_spec, tmp_path):
    (tmp_path / "c.txt").write_text(f"BZh is how this line starts: {GOOD}\n")
    manifest, _ = run_stage(STAGE, write_spec({"type": "local", "path": "c.txt"}), str(tmp_path / "run"))
    assert manifest.stats.documents_written == 1
