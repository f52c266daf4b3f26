"""``run_stage`` of the extract stage for each kind of source, and the files it hands to querygen."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from osft.common.corpus import iter_corpus
from osft.common.stage import StageContext, run_stage
from osft.extractor.stage import STAGE
from tests.extractor.conftest import corpus, opensearch_source


def shard_docs(run_dir: Path, manifest) -> list[dict]:
    docs = []
    for shard in manifest.stats.shards:
        with gzip.open(run_dir / "extract" / shard, "rt", encoding="utf-8") as handle:
            docs += [json.loads(line) for line in handle]
    return docs


def test_run_stage_exports_an_opensearch_index(fake_opensearch, write_spec, tmp_path):
    server = fake_opensearch(docs=600)
    spec = write_spec(opensearch_source(server.url))

    manifest, skipped = run_stage(STAGE, spec, str(tmp_path / "run"))

    docs = shard_docs(tmp_path / "run", manifest)
    assert not skipped
    assert sorted(d["id"] for d in docs) == sorted(f"d{i}" for i in range(600))
    assert docs[0]["title"].startswith("Title ") and "Document number" in docs[0]["text"]
    assert manifest.stats.iteration == "pit"
    assert manifest.stats.documents_written == 600
    assert server.open_contexts == 0


def test_run_stage_reads_an_s3_prefix_of_gzipped_and_plain_objects(aws_env, write_spec, tmp_path):
    import boto3
    from moto import mock_aws

    docs = corpus(300)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="corpus-bucket")
        lines = [json.dumps({"id": d["id"], "title": d["title"], "text": d["body"]["content"]}) for d in docs]
        s3.put_object(
            Bucket="corpus-bucket", Key="in/part-0.jsonl.gz", Body=gzip.compress("\n".join(lines[:200]).encode())
        )
        s3.put_object(Bucket="corpus-bucket", Key="in/part-1.jsonl", Body="\n".join(lines[200:]).encode())
        s3.put_object(Bucket="corpus-bucket", Key="in/_SUCCESS", Body=b"")
        spec = write_spec({"type": "s3", "uri": "s3://corpus-bucket/in/"})

        manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert sorted(d["id"] for d in shard_docs(tmp_path / "run", manifest)) == sorted(d["id"] for d in docs)
    assert manifest.stats.source == "s3:s3://corpus-bucket/in/"


def test_run_stage_reads_one_s3_object(aws_env, write_spec, tmp_path):
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="corpus-bucket")
        rows = "id,text\n" + "\n".join(f"r{i},Row {i} holds a sentence long enough to be kept here." for i in range(50))
        s3.put_object(Bucket="corpus-bucket", Key="data/rows.csv", Body=rows.encode())
        spec = write_spec({"type": "s3", "uri": "s3://corpus-bucket/data/rows.csv", "fields": {"title": None}})

        manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert manifest.stats.documents_written == 50


def test_a_missing_s3_bucket_is_named(aws_env, write_spec, tmp_path):
    from moto import mock_aws

    from osft.common.errors import StorageError

    with mock_aws():
        spec = write_spec({"type": "s3", "uri": "s3://no-such-bucket/x/"})
        with pytest.raises(StorageError, match="s3://no-such-bucket/x/: bucket does not exist"):
            run_stage(STAGE, spec, str(tmp_path / "run"))


def test_run_stage_reads_a_folder_of_local_files_in_every_format(write_spec, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "corpus"
    folder.mkdir()
    sentence = "holds a sentence that is long enough to be kept by the filter"
    (folder / "a.jsonl").write_text(
        "\n".join(json.dumps({"id": f"j{i}", "text": f"JSON {i} {sentence}"}) for i in range(5))
    )
    (folder / "b.csv").write_text("id,text\n" + "\n".join(f"c{i},CSV {i} {sentence}" for i in range(5)))
    (folder / "c.tsv").write_text("id\ttext\n" + "\n".join(f"t{i}\tTSV {i} {sentence}" for i in range(5)))
    (folder / "d.txt").write_text("\n".join(f"Text line {i} {sentence}" for i in range(5)))
    pq.write_table(
        pa.table({"id": [f"p{i}" for i in range(5)], "text": [f"Parquet {i} {sentence}" for i in range(5)]}),
        folder / "e.parquet",
    )
    spec = write_spec({"type": "local", "path": "corpus", "fields": {"title": None}})

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    ids = {d["id"] for d in shard_docs(tmp_path / "run", manifest)}
    assert len(ids) == 25
    assert {"j0", "c0", "t0", "p0", "d-1"} <= ids


def test_a_text_file_can_be_one_document(write_spec, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.txt").write_text(
        "First line of the guide.\nSecond line of the same guide, continued.\n"
    )
    spec = write_spec({"type": "local", "path": "docs", "text_unit": "file"})

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    (doc,) = shard_docs(tmp_path / "run", manifest)
    assert doc == {
        "id": "guide",
        "title": "guide",
        "text": "First line of the guide. Second line of the same guide, continued.",
    }


def test_sampling_keeps_n_documents_uniformly_and_reproducibly(write_spec, tmp_path):
    lines = [
        json.dumps({"id": f"x{i}", "text": f"document {i} with enough words to stay in the corpus"})
        for i in range(2000)
    ]
    (tmp_path / "c.jsonl").write_text("\n".join(lines))
    spec = write_spec({"type": "local", "path": "c.jsonl"}, sampling={"max_docs": 200, "seed": 7})

    first, _ = run_stage(STAGE, spec, str(tmp_path / "run1"))
    second, _ = run_stage(STAGE, spec, str(tmp_path / "run2"))

    ids1 = [d["id"] for d in shard_docs(tmp_path / "run1", first)]
    assert len(ids1) == 200 and ids1 == [d["id"] for d in shard_docs(tmp_path / "run2", second)]
    assert first.stats.removed["sampled_out"] == 1800
    positions = sorted(int(i[1:]) for i in ids1)
    assert positions[0] < 200 and positions[-1] > 1800  # drawn from the whole stream, not its head


def test_shards_roll_over_and_querygen_reads_them(write_spec, tmp_path, monkeypatch):
    monkeypatch.setattr("osft.extractor.shard_writer.SHARD_SIZE", 40)
    lines = [
        json.dumps({"id": f"x{i}", "text": f"document {i} with enough words to stay in the corpus"}) for i in range(100)
    ]
    (tmp_path / "c.jsonl").write_text("\n".join(lines))
    spec = write_spec({"type": "local", "path": "c.jsonl"})

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert manifest.stats.shards == ["docs-00000.jsonl.gz", "docs-00001.jsonl.gz", "docs-00002.jsonl.gz"]
    ctx = StageContext(STAGE, _spec(spec), spec, str(tmp_path / "run"), tmp_path / "run" / "q")
    assert len(list(iter_corpus(ctx))) == 100


def _spec(uri: str):
    from osft.common.stage import load_spec

    return load_spec(uri)


def test_pairs_source_writes_a_corpus_and_pairs_for_querygen(write_spec, tmp_path):
    rows = [
        {"query": "how to reset a password", "passage": "Open settings, then choose Reset password."},
        {"anchor": "reset password", "positive": "Open settings, then choose Reset password."},
        {"text_a": "billing address change", "text_b": "Billing addresses are edited under Account."},
        {"query": "how to reset a password", "passage": "Open settings, then choose Reset password."},
    ]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    spec = write_spec({"type": "pairs", "path": "pairs.jsonl"})

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    docs = shard_docs(tmp_path / "run", manifest)
    pairs = [json.loads(line) for line in (tmp_path / "run" / "extract" / "pairs.jsonl").read_text().splitlines()]
    assert manifest.stats.pairs_file == "pairs.jsonl"
    assert len(docs) == 2 and len(pairs) == 3
    assert {p["doc_id"] for p in pairs} == {d["id"] for d in docs}
    assert set(pairs[0]) == {"query_id", "query", "doc_id"}
    assert pairs[0]["doc_id"] == pairs[1]["doc_id"]
    assert manifest.stats.removed == {"duplicate_pair": 1}
    assert "extract/pairs.jsonl" in {o.path for o in manifest.outputs}


def test_pairs_from_a_tsv_file(write_spec, tmp_path):
    (tmp_path / "pairs.tsv").write_text("query\tpassage\nwhat is osft\tosft fine-tunes retrieval models.\n")
    manifest, _ = run_stage(STAGE, write_spec({"type": "pairs", "path": "pairs.tsv"}), str(tmp_path / "run"))
    assert manifest.stats.pairs_written == 1


def test_rerun_with_unchanged_input_is_skipped_and_an_edit_reruns(write_spec, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "a document with enough words to be kept in the corpus"}))
    spec = write_spec({"type": "local", "path": "c.jsonl"})
    run_stage(STAGE, spec, str(tmp_path / "run"))

    _, skipped = run_stage(STAGE, spec, str(tmp_path / "run"))
    assert skipped
    path.write_text(json.dumps({"id": "a", "text": "a changed document with enough words to be kept in it"}) + "\n")
    _, skipped = run_stage(STAGE, spec, str(tmp_path / "run"))
    assert not skipped


@pytest.mark.parametrize("kind", ["opensearch", "local"])
def test_osft_run_until_extract_works_for_an_index_and_for_files(kind, fake_opensearch, write_spec, tmp_path):
    from click.testing import CliRunner

    from osft.common.cli import main

    if kind == "opensearch":
        source = opensearch_source(fake_opensearch(docs=120).url)
    else:
        lines = [
            json.dumps({"id": f"x{i}", "text": f"document {i} with enough words to stay in the corpus"})
            for i in range(120)
        ]
        (tmp_path / "c.jsonl").write_text("\n".join(lines))
        source = {"type": "local", "path": "c.jsonl"}
    run_dir = tmp_path / "run"

    result = CliRunner().invoke(main, ["run", write_spec(source), "--run-dir", str(run_dir), "--until", "extract"])

    assert result.exit_code == 0, result.output
    manifest = json.loads((run_dir / "extract" / "manifest.json").read_text())
    assert manifest["stats"]["documents_written"] == 120
    assert not (run_dir / "querygen").exists()


def test_osft_run_until_extract_works_for_an_s3_corpus(aws_env, write_spec, tmp_path):
    import boto3
    from click.testing import CliRunner
    from moto import mock_aws

    from osft.common.cli import main

    lines = [
        json.dumps({"id": f"x{i}", "text": f"document {i} with enough words to stay in the corpus"}) for i in range(80)
    ]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="corpus-bucket")
        s3.put_object(Bucket="corpus-bucket", Key="c.jsonl.gz", Body=gzip.compress("\n".join(lines).encode()))
        spec = write_spec({"type": "s3", "uri": "s3://corpus-bucket/c.jsonl.gz"})
        result = CliRunner().invoke(main, ["run", spec, "--run-dir", str(tmp_path / "run"), "--until", "extract"])

    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "extract" / "manifest.json").read_text())["stats"]["documents_written"] == 80


def test_opensearch_id_from_a_field_and_several_text_fields_joined(fake_opensearch, write_spec, tmp_path):
    from opensearch_server import FakeOpenSearch

    server = fake_opensearch()
    assert isinstance(server, FakeOpenSearch)
    server.add_index("docs", corpus(50), id_field=None)  # _id is 1..50; the source's own id is d0..d49
    fields = {"id": "id", "title": None, "text": ["title", "body.content"], "join_with": " | "}
    spec = write_spec(opensearch_source(server.url, fields=fields))

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    docs = {d["id"]: d for d in shard_docs(tmp_path / "run", manifest)}
    assert sorted(docs) == sorted(f"d{i}" for i in range(50))
    assert docs["d7"]["text"].startswith("Title 7 | Document number 7")
    assert docs["d7"]["title"] == ""


def test_run_stage_reads_a_parquet_object_from_s3(aws_env, write_spec, tmp_path):
    import io

    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq
    from moto import mock_aws

    table = pa.table(
        {
            "id": [f"p{i}" for i in range(30)],
            "body": [f"Parquet row {i} with words enough to be kept." for i in range(30)],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="corpus-bucket")
        s3.put_object(Bucket="corpus-bucket", Key="t/rows.parquet", Body=buffer.getvalue())
        spec = write_spec(
            {"type": "s3", "uri": "s3://corpus-bucket/t/rows.parquet", "fields": {"title": None, "text": "body"}}
        )

        manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert manifest.stats.documents_written == 30


def test_pairs_without_a_passage_are_skipped_and_counted(write_spec, tmp_path):
    rows = [
        {"query": "q one", "passage": "passage one"},
        {"query": "q two"},
        {"query": "q three", "positive": "passage three"},
    ]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    spec = write_spec({"type": "pairs", "path": "pairs.jsonl", "bad_records": {"on_error": "skip"}})

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert manifest.stats.pairs_written == 2
    assert manifest.stats.skipped_by_reason == {"missing_pair_field": 1}


def test_long_documents_can_be_truncated_instead_of_split(write_spec, tmp_path):
    long_text = " ".join(f"sentence {i} talks about the search index and its settings." for i in range(60))
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "a", "text": long_text}))
    cleaning = {"max_passage_tokens": 32, "long_docs": "truncate"}
    manifest, _ = run_stage(
        STAGE, write_spec({"type": "local", "path": "c.jsonl"}, cleaning=cleaning), str(tmp_path / "run")
    )

    (doc,) = shard_docs(tmp_path / "run", manifest)
    assert doc["id"] == "a" and long_text.startswith(doc["text"]) and len(doc["text"]) < 200
    assert manifest.stats.removed == {"tail_over_passage_cap": 1}


def test_an_opensearch_document_with_a_lone_surrogate_is_exported(fake_opensearch, write_spec, tmp_path):
    # OpenSearch returns "\ud800" escapes as stored; opensearch-py decodes them to unencodable strings.
    server = fake_opensearch()
    docs = corpus(3)
    docs[1]["body"]["content"] += " \ud800"
    server.add_index("docs", docs)
    spec = write_spec(opensearch_source(server.url))

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    texts = {d["id"]: d["text"] for d in shard_docs(tmp_path / "run", manifest)}
    assert texts["d1"].endswith(" \ufffd")
