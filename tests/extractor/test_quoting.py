"""``source.quoting``: RFC 4180 CSV/TSV by default, or raw text split on the delimiter only."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from osft.common.errors import InputDataError
from osft.common.spec.source import LocalSource, PairsSource, S3Source
from osft.common.stage import run_stage
from osft.extractor.stage import STAGE
from tests.extractor.test_stage_run import shard_docs

GOOD = "a document with plenty of words and long enough to pass the filter"
# Text a raw export (cut/paste, an unquoted database dump) writes as it is: quotes are part of the text.
RAW_TEXTS = {
    "a": f'"Quoted" words open {GOOD}',
    "b": f'"never closed {GOOD}',
    "c": f'say ""hi"" twice {GOOD}',
    "d": f'a 27" screen, "curly" or not {GOOD}"',
    "e": f'"""{GOOD}"""',
}


def texts(run_dir: Path, manifest) -> dict[str, str]:
    return {d["id"]: d["text"] for d in shard_docs(run_dir, manifest)}


def raw_tsv(path: Path) -> Path:
    path.write_text("id\ttext\n" + "".join(f"{key}\t{text}\n" for key, text in RAW_TEXTS.items()))
    return path


def test_a_raw_tsv_whose_fields_start_with_a_quote_is_read_verbatim_with_quoting_none(write_spec, tmp_path):
    raw_tsv(tmp_path / "c.tsv")
    source = {"type": "local", "path": "c.tsv", "quoting": "none", "fields": {"title": None}}

    manifest, _ = run_stage(STAGE, write_spec(source), str(tmp_path / "run"))

    assert texts(tmp_path / "run", manifest) == RAW_TEXTS
    assert manifest.stats.skipped_bad_records == 0


@pytest.mark.parametrize("default", [{}, {"quoting": "rfc4180"}], ids=["unset", "rfc4180"])
def test_the_same_raw_tsv_read_as_rfc4180_still_gives_named_bad_records(write_spec, tmp_path, default):
    raw_tsv(tmp_path / "c.tsv")
    source = {"type": "local", "path": "c.tsv", "fields": {"title": None}, **default}

    with pytest.raises(InputDataError, match=r"c\.tsv:2: cannot parse") as caught:
        run_stage(STAGE, write_spec(source), str(tmp_path / "run"))
    assert "set source.quoting to 'none'" in caught.value.render()

    # Skipping: "a" is one bad record, the quote that opens "b" runs on through "c" into "d" (another), and "e"
    # loses its quotes.
    manifest, _ = run_stage(STAGE, write_spec({**source, "bad_records": {"on_error": "skip"}}), str(tmp_path / "r2"))
    assert manifest.stats.skipped_by_reason == {"malformed_csv": 2}
    assert texts(tmp_path / "r2", manifest) == {"e": f'"{GOOD}"'}


def test_a_row_with_the_wrong_field_count_under_quoting_none_names_file_and_line(write_spec, tmp_path):
    lines = [
        "id\ttitle\ttext",  # 1
        f"a\tA\t{GOOD}",  # 2
        "  ",  # 3: blank lines are skipped, and still counted
        f"b\tB\t{GOOD}\ta tab in the text",  # 4: one field too many
        f"c\tC\tfirst half of a text with a line break {GOOD}",  # 5: reads as a whole row ...
        "second half",  # 6: ... and this rest of it has too few fields
        f'd\t"D"\t"{GOOD}',  # 7
    ]
    (tmp_path / "c.tsv").write_bytes(gzip.compress(("\r\n".join(lines) + "\r\n").encode()))
    source = {"type": "local", "path": "c.tsv", "format": "tsv", "quoting": "none"}

    with pytest.raises(InputDataError, match=r"c\.tsv:4: row has 4 fields, more than the header \(3\)") as caught:
        run_stage(STAGE, write_spec(source), str(tmp_path / "run"))
    assert "no field can hold the delimiter (a tab)" in caught.value.render()

    (tmp_path / "d.tsv").write_text("\n".join(lines[:3] + lines[4:]) + "\n")  # without line 4
    with pytest.raises(InputDataError, match=r"d\.tsv:5: row has 1 field, fewer than the header \(3\)") as caught:
        run_stage(STAGE, write_spec({**source, "path": "d.tsv"}), str(tmp_path / "r2"))
    assert "no field can hold a line break" in caught.value.render()

    skip = {**source, "bad_records": {"on_error": "skip"}}
    manifest, _ = run_stage(STAGE, write_spec(skip), str(tmp_path / "r3"))
    assert manifest.stats.skipped_by_reason == {"malformed_csv": 2}
    docs = {d["id"]: d for d in shard_docs(tmp_path / "r3", manifest)}
    assert sorted(docs) == ["a", "c", "d"]
    assert docs["d"]["title"] == '"D"' and docs["d"]["text"] == f'"{GOOD}'  # no \r left from the CRLF line ends


def test_a_header_naming_a_column_twice_is_an_error_under_quoting_none(write_spec, tmp_path):
    (tmp_path / "c.tsv").write_text(f"id\ttext\ttext\na\t{GOOD}\tmore\n")
    source = {"type": "local", "path": "c.tsv", "quoting": "none"}
    with pytest.raises(InputDataError, match=r"c\.tsv:1: the header names 'text' more than once"):
        run_stage(STAGE, write_spec(source), str(tmp_path / "run"))


def test_a_csv_with_quoting_none_keeps_its_quotes(write_spec, tmp_path):
    rows = [f'a,"Quoted" words {GOOD}', f'b,a 27" screen {GOOD}', f'c,"{GOOD}"', f'd,"one, two" {GOOD}']
    (tmp_path / "c.csv").write_text("id,text\n" + "\n".join(rows) + "\n")
    source = {"type": "local", "path": "c.csv", "quoting": "none", "fields": {"title": None}}

    with pytest.raises(InputDataError, match=r"c\.csv:5: row has 3 fields, more than the header \(2\)") as caught:
        run_stage(STAGE, write_spec(source), str(tmp_path / "run"))
    assert "no field can hold the delimiter (a comma)" in caught.value.render()

    manifest, _ = run_stage(STAGE, write_spec({**source, "bad_records": {"on_error": "skip"}}), str(tmp_path / "r2"))
    assert texts(tmp_path / "r2", manifest) == {
        "a": f'"Quoted" words {GOOD}',
        "b": f'a 27" screen {GOOD}',
        "c": f'"{GOOD}"',
    }
    assert manifest.stats.skipped_by_reason == {"malformed_csv": 1}


def test_an_s3_tsv_and_a_pairs_tsv_are_read_with_quoting_none(aws_env, write_spec, tmp_path):
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="corpus-bucket")
        s3.put_object(Bucket="corpus-bucket", Key="raw/c.tsv", Body=raw_tsv(tmp_path / "c.tsv").read_bytes())
        spec = write_spec(
            {"type": "s3", "uri": "s3://corpus-bucket/raw/c.tsv", "quoting": "none", "fields": {"title": None}}
        )
        manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))
    assert texts(tmp_path / "run", manifest) == RAW_TEXTS

    (tmp_path / "pairs.tsv").write_text('query\tpassage\n"osft" meaning\t"osft" fine-tunes retrieval models.\n')
    manifest, _ = run_stage(
        STAGE, write_spec({"type": "pairs", "path": "pairs.tsv", "quoting": "none"}), str(tmp_path / "r2")
    )
    pair = json.loads((tmp_path / "r2" / "extract" / "pairs.jsonl").read_text())
    assert pair["query"] == '"osft" meaning'
    assert [d["text"] for d in shard_docs(tmp_path / "r2", manifest)] == ['"osft" fine-tunes retrieval models.']


def test_quoting_is_ignored_by_formats_that_are_not_delimited(write_spec, tmp_path):
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "a", "text": f'"{GOOD}'}) + "\n")
    spec = write_spec({"type": "local", "path": "c.jsonl", "quoting": "none"})
    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))
    assert texts(tmp_path / "run", manifest) == {"a": f'"{GOOD}'}


@pytest.mark.parametrize(
    "source",
    [
        LocalSource(type="local", path="c.tsv"),
        S3Source(type="s3", uri="s3://corpus-bucket/raw/"),
        PairsSource(type="pairs", path="pairs.tsv"),
    ],
    ids=["local", "s3", "pairs"],
)
def test_quoting_at_its_default_leaves_the_fingerprint_of_finished_runs_alone(source):
    # What runs made before source.quoting existed hashed: the section without it.
    before = source.model_dump(mode="json")
    before.pop("quoting")
    assert source.fingerprint_material() == before
    assert source.model_copy(update={"quoting": "rfc4180"}).fingerprint_material() == before
    assert source.model_copy(update={"quoting": "none"}).fingerprint_material() == {**before, "quoting": "none"}


def test_an_extract_finished_before_quoting_existed_stays_done_and_reruns_for_none(write_spec, tmp_path, monkeypatch):
    (tmp_path / "c.tsv").write_text(f"id\ttext\na\t{GOOD}\n")
    source = {"type": "local", "path": "c.tsv", "fields": {"title": None}}
    with monkeypatch.context() as old_osft:
        # The source section as osft hashed it before the field existed: all of it, with no quoting key.
        old_osft.setattr(
            LocalSource, "fingerprint_material", lambda self: self.model_dump(mode="json", exclude={"quoting"})
        )
        _, skipped = run_stage(STAGE, write_spec(source), str(tmp_path / "run"))
    assert not skipped

    for default in ({}, {"quoting": "rfc4180"}):
        _, skipped = run_stage(STAGE, write_spec({**source, **default}), str(tmp_path / "run"))
        assert skipped
    _, skipped = run_stage(STAGE, write_spec({**source, "quoting": "none"}), str(tmp_path / "run"))
    assert not skipped


def write_text_with_lone_cr(path: Path, encoding: str, quote: str) -> None:
    # Old Mac line ends pasted into a field. Only \n ends a row, in UTF-16 as in UTF-8.
    rows = f"id\ttext\r\na\t{quote}first\rsecond {GOOD}{quote}\r\nb\t{GOOD}\r\n"
    path.write_text(rows, encoding=encoding, newline="")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize(("quoting", "quote"), [("none", ""), ("rfc4180", '"')])
def test_a_lone_carriage_return_inside_a_field_is_text_in_every_encoding(
    write_spec, tmp_path, encoding, quoting, quote
):
    write_text_with_lone_cr(tmp_path / "c.tsv", encoding, quote)
    source = {"type": "local", "path": "c.tsv", "quoting": quoting, "encoding": encoding, "fields": {"title": None}}

    manifest, _ = run_stage(STAGE, write_spec(source), str(tmp_path / "run"))

    assert manifest.stats.skipped_bad_records == 0
    assert sorted(texts(tmp_path / "run", manifest)) == ["a", "b"]
    assert "second" in texts(tmp_path / "run", manifest)["a"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_lone_carriage_return_in_an_unquoted_rfc4180_field_is_a_named_bad_record(write_spec, tmp_path, encoding):
    write_text_with_lone_cr(tmp_path / "c.tsv", encoding, quote="")
    source = {"type": "local", "path": "c.tsv", "encoding": encoding, "fields": {"title": None}}

    with pytest.raises(InputDataError, match=r"c\.tsv:2: a carriage return \(\\r\) inside an unquoted field") as caught:
        run_stage(STAGE, write_spec(source), str(tmp_path / "run"))
    assert "set source.quoting to 'none'" in caught.value.render()
