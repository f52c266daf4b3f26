"""Local paths and s3:// URIs through one interface; stages run the same with an S3 run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest

from osft.common.errors import CredentialsError, StorageError
from osft.common.stage import read_manifest, run_stage
from osft.common.storage import Location, atomic_path
from osft.extractor.stage import STAGE as EXTRACT
from osft.querygen.stage import STAGE as QUERYGEN


def test_local_write_is_atomic_and_readable(tmp_path: Path) -> None:
    target = Location(str(tmp_path / "a" / "b.json"))
    target.write_text('{"ok": true}')
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.json"]


def test_failed_write_leaves_the_previous_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "data.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_missing_local_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="file not found"):
        Location(str(tmp_path / "nope.json")).read_text()


def test_s3_round_trip_listing_and_folder_publish(bucket: str, tmp_path: Path) -> None:
    root = Location(f"s3://{bucket}/runs/x")
    root.child("spec.json").write_text("{}")
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"1")
    (folder / "sub" / "b.bin").write_bytes(b"2")
    root.child("model").publish(folder)
    assert [loc.uri for loc in root.list_files()] == [
        f"s3://{bucket}/runs/x/model/a.bin",
        f"s3://{bucket}/runs/x/model/sub/b.bin",
        f"s3://{bucket}/runs/x/spec.json",
    ]
    fetched = root.child("model").fetch(tmp_path / "cache")
    assert (fetched / "sub" / "b.bin").read_bytes() == b"2"
    assert root.child("spec.json").exists() and not root.child("other.json").exists()


def test_missing_s3_object_and_bucket_are_clear_errors(bucket: str) -> None:
    with pytest.raises(StorageError, match="object not found"):
        Location(f"s3://{bucket}/nothing.json").read_text()
    with pytest.raises(StorageError, match="bucket does not exist"):
        Location("s3://no-such-bucket-here/x.json").read_text()
    for uri in (f"s3://{bucket}", f"s3://{bucket}/"):  # `osft validate s3://bucket/`: no botocore parameter error
        with pytest.raises(StorageError, match="names a bucket, not a file"):
            Location(uri).read_text()


def test_stages_run_with_spec_and_run_folder_on_s3(bucket: str, tiny_corpus: Path) -> None:
    corpus_uri = f"s3://{bucket}/input/corpus.jsonl"
    Location(corpus_uri).write_bytes(tiny_corpus.read_bytes())
    spec = {"name": "s3-run", "source": {"type": "s3", "uri": corpus_uri}, "querygen": {"heldout_fraction": 0.2}}
    spec_uri = f"s3://{bucket}/runs/s3-run/spec.json"
    Location(spec_uri).write_text(json.dumps(spec))
    run_dir = f"s3://{bucket}/runs/s3-run"

    run_stage(EXTRACT, spec_uri, run_dir)
    manifest, skipped = run_stage(QUERYGEN, spec_uri, run_dir)
    assert not skipped and manifest.stats.train_pairs > 0
    assert Location(f"{run_dir}/querygen/train.jsonl").exists()
    assert read_manifest(run_dir, "extract").stats.documents_written == 40
    _, skipped_again = run_stage(QUERYGEN, spec_uri, run_dir)
    assert skipped_again


def test_fetch_downloads_again_what_changed_on_s3(bucket: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    model = Location(f"s3://{bucket}/runs/x/model")
    model.child("a.bin").write_bytes(b"first")
    model.child("b.bin").write_bytes(b"kept")
    Location(f"s3://{bucket}/runs/x/model2/c.bin").write_bytes(b"a sibling, not inside")
    single = Location(f"s3://{bucket}/runs/x/spec.json")
    single.write_text("v1")

    fetched = model.fetch(cache)
    assert sorted(p.name for p in fetched.iterdir()) == ["a.bin", "b.bin"]
    assert single.fetch(cache).read_text() == "v1"

    model.child("a.bin").write_bytes(b"second")
    boto3.client("s3").delete_object(Bucket=bucket, Key="runs/x/model/b.bin")
    single.write_text("v2")
    fetched = model.fetch(cache)
    assert sorted(p.name for p in fetched.iterdir()) == ["a.bin"]
    assert (fetched / "a.bin").read_bytes() == b"second"
    assert single.fetch(cache).read_text() == "v2"


def test_fetch_keeps_an_unchanged_copy_and_handles_odd_keys(bucket: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec = Location(f"s3://{bucket}/cfg/spec.json")
    spec.write_text("remote")
    cached = spec.fetch(cache)
    cached.write_text("local edit")
    assert spec.fetch(cache).read_text() == "local edit", "an unchanged object is not downloaded again"

    Location(f"s3://{bucket}/cfg//double.json").write_text("d")
    assert (Location(f"s3://{bucket}/cfg").fetch(cache) / "double.json").read_text() == "d"
    root = Location(f"s3://{bucket}").fetch(cache)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "cfg/double.json",
        "cfg/spec.json",
    ]


def test_s3_listing_and_deleting_stay_inside_the_folder_or_file(bucket: str) -> None:
    run = Location(f"s3://{bucket}/runs/x")
    for key in ("train/manifest.json", "train/manifest.json.bak", "train/model/a.bin", "train2/model/b.bin"):
        run.child(key).write_text(key)

    assert [loc.uri for loc in run.child("train").list_files()] == [
        f"s3://{bucket}/runs/x/train/manifest.json",
        f"s3://{bucket}/runs/x/train/manifest.json.bak",
        f"s3://{bucket}/runs/x/train/model/a.bin",
    ]
    assert [loc.name for loc in run.child("train/manifest.json").list_files()] == ["manifest.json"]

    run.child("train/manifest.json").delete_tree()
    run.child("train").delete_tree()
    remaining = [item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert remaining == ["runs/x/train2/model/b.bin"]


def test_mirror_uploads_what_changed_and_deletes_what_is_gone(bucket: str, tmp_path: Path) -> None:
    """save_work's sync: checkpoints the trainer rotated out must not pile up on S3 or come back on resume."""
    local = tmp_path / "work"
    (local / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (local / "checkpoints" / "checkpoint-2" / "model.safetensors").write_text("step 2")
    (local / "records.jsonl").write_text("a\n")
    target, sent = Location(f"s3://{bucket}/runs/x/train/_work"), {}
    target.mirror(local, sent)

    shutil.rmtree(local / "checkpoints" / "checkpoint-2")
    (local / "checkpoints" / "checkpoint-4").mkdir()
    (local / "checkpoints" / "checkpoint-4" / "model.safetensors").write_text("step 4")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="runs/x/train/_work/records.jsonl", Body=b"changed remotely")
    target.mirror(local, sent)

    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["runs/x/train/_work/checkpoints/checkpoint-4/model.safetensors", "runs/x/train/_work/records.jsonl"]
    unchanged = s3.get_object(Bucket=bucket, Key="runs/x/train/_work/records.jsonl")["Body"].read()
    assert unchanged == b"changed remotely", "a file unchanged since it was sent is not uploaded again"
    assert set(sent) == {"checkpoints/checkpoint-4/model.safetensors", "records.jsonl"}


def test_publishing_a_folder_again_on_s3_replaces_it_whole(bucket: str, tmp_path: Path) -> None:
    """A re-run's model folder without the export the last run wrote must not come back with it on fetch."""
    model = tmp_path / "model"
    (model / "onnx").mkdir(parents=True)
    (model / "model.safetensors").write_text("v1")
    (model / "onnx" / "model.onnx").write_text("v1")
    Location(f"s3://{bucket}/runs/x/model2/kept.bin").write_text("a sibling folder")
    target = Location(f"s3://{bucket}/runs/x/model")
    target.publish(model)

    shutil.rmtree(model / "onnx")
    (model / "model.safetensors").write_text("v2")
    target.publish(model)

    assert [loc.uri for loc in target.list_files()] == [f"s3://{bucket}/runs/x/model/model.safetensors"]
    assert target.child("model.safetensors").read_text() == "v2"
    assert Location(f"s3://{bucket}/runs/x/model2/kept.bin").exists()


def test_a_refused_s3_delete_is_a_credentials_error_not_a_botocore_traceback(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run role without s3:DeleteObject meets this when a re-run removes the stage's old manifest."""
    from botocore.exceptions import ClientError

    from osft.common import storage

    manifest = Location(f"s3://{bucket}/runs/x/train/manifest.json")
    manifest.write_text("{}")
    real_client = storage.s3_client

    def refusing_client(region: str | None = None):
        client = real_client(region)

        def refuse(**kwargs: object) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "DeleteObject")

        client.delete_object = refuse
        return client

    monkeypatch.setattr(storage, "s3_client", refusing_client)
    with pytest.raises(CredentialsError, match=r"runs/x/train/manifest.json: access denied \(AccessDenied\)"):
        manifest.delete_tree()
