"""Ids of plain-text documents: unique when files share a stem, unchanged when they do not."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from osft.common.stage import run_stage
from osft.extractor.file_formats import text_id_stems
from osft.extractor.source_files import SourceFile
from osft.extractor.stage import STAGE

SENTENCE = "holds a sentence that is long enough to be kept by the length filter"


def shard_ids(run_dir: Path, manifest) -> list[str]:
    ids = []
    for shard in manifest.stats.shards:
        with gzip.open(run_dir / "extract" / shard, "rt", encoding="utf-8") as handle:
            ids += [json.loads(line)["id"] for line in handle]
    return ids


def lines(label: str, n: int = 2) -> str:
    return "\n".join(f"{label} line {i} {SENTENCE}" for i in range(n)) + "\n"


def shared_stem_folder(folder: Path) -> None:
    (folder / "docs").mkdir(parents=True)
    (folder / "other").mkdir()
    (folder / "a.txt").write_text(lines("txt"))
    (folder / "a.md").write_text(lines("markdown"))
    (folder / "a.txt.gz").write_bytes(gzip.compress(lines("gzipped").encode()))
    (folder / "b.txt").write_text(lines("bee"))
    (folder / "docs" / "a.txt").write_text(lines("docs"))
    (folder / "other" / "a.txt").write_text(lines("other"))


def test_files_sharing_a_stem_keep_every_line_with_unique_ids(write_spec, tmp_path):
    shared_stem_folder(tmp_path / "corpus")
    spec = write_spec({"type": "local", "path": "corpus", "fields": {"title": None}})

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    shared = ["a.md-1", "a.md-2", "a.txt-1", "a.txt-2", "a.txt.gz-1", "a.txt.gz-2"]
    unshared = ["b-1", "b-2", "docs/a-1", "docs/a-2", "other/a-1", "other/a-2"]
    assert sorted(shard_ids(tmp_path / "run", manifest)) == sorted([*shared, *unshared])
    assert "duplicate_id" not in manifest.stats.removed


def test_files_sharing_a_stem_are_separate_documents_in_file_mode(write_spec, tmp_path):
    shared_stem_folder(tmp_path / "corpus")
    spec = write_spec({"type": "local", "path": "corpus/**/a.*", "text_unit": "file"})

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert sorted(shard_ids(tmp_path / "run", manifest)) == ["a.md", "a.txt", "a.txt.gz", "docs/a", "other/a"]


def test_files_sharing_a_stem_under_an_s3_prefix_keep_every_line(aws_env, write_spec, tmp_path):
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="corpus-bucket")
        s3.put_object(Bucket="corpus-bucket", Key="in/a.txt", Body=lines("txt").encode())
        s3.put_object(Bucket="corpus-bucket", Key="in/a.md", Body=lines("markdown").encode())
        s3.put_object(Bucket="corpus-bucket", Key="in/c.txt", Body=lines("sea").encode())
        spec = write_spec({"type": "s3", "uri": "s3://corpus-bucket/in/", "fields": {"title": None}})

        manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert sorted(shard_ids(tmp_path / "run", manifest)) == ["a.md-1", "a.md-2", "a.txt-1", "a.txt-2", "c-1", "c-2"]


def fake_file(name: str, where: str | None = None) -> SourceFile:
    return SourceFile(where=where or f"/data/{name}", name=name, size=1, open=lambda: None)  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("order", [1, -1])
def test_id_stems_do_not_depend_on_listing_order(order):
    files = [fake_file(n) for n in ["a.txt", "a.md", "a.txt.gz", "b.txt", "sub/a.txt", "x.jsonl"]][::order]

    assert text_id_stems(files, "auto") == {
        "/data/a.txt": "a.txt",
        "/data/a.md": "a.md",
        "/data/a.txt.gz": "a.txt.gz",
        "/data/b.txt": "b",
        "/data/sub/a.txt": "sub/a",
    }


def test_a_renamed_id_never_takes_another_files_stem():
    # "a.txt" and "a.md" share the stem "a"; "a.txt" is also the stem of "a.txt.md", which keeps it.
    files = [fake_file("a.txt"), fake_file("a.md"), fake_file("a.txt.md")]

    stems = text_id_stems(files, "auto")

    assert stems["/data/a.txt.md"] == "a.txt"
    assert stems["/data/a.md"] == "a.md"
    assert len(set(stems.values())) == 3


def test_files_with_the_same_name_fall_back_to_their_location():
    # A glob whose files lie outside its root names them by base name only.
    files = [fake_file("x.txt", "/data/a/x.txt"), fake_file("x.txt", "/data/ab/x.txt")]

    assert text_id_stems(files, "text") == {"/data/a/x.txt": "/data/a/x.txt", "/data/ab/x.txt": "/data/ab/x.txt"}


def test_only_files_read_as_text_take_part():
    files = [fake_file("a.txt"), fake_file("a.jsonl"), fake_file("a.unknown")]

    assert text_id_stems(files, "auto") == {"/data/a.txt": "a"}
