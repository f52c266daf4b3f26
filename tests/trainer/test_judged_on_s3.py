"""Judged queries on S3, as a SageMaker evaluate job is given them: read without the BEIR folder's corpus."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from osft.common.errors import OsftError
from osft.common.spec.evaluation import JudgedQueries
from osft.trainer.evaluate_stage import judged_set


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="judged-bucket")
        yield client


def _ctx(path: str, split: str = "test") -> SimpleNamespace:
    judged = JudgedQueries(path=path, split=split)
    spec = SimpleNamespace(evaluation=SimpleNamespace(judged=judged), deploy=None)
    return SimpleNamespace(spec=spec, resolve=lambda p: p)


def test_judged_queries_on_s3_are_read_without_downloading_the_corpus(s3, tmp_path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    put = s3.put_object
    put(Bucket="judged-bucket", Key="sets/scifact/queries.jsonl", Body=b'{"_id": "q1", "text": "a claim"}\n')
    put(Bucket="judged-bucket", Key="sets/scifact/qrels/test.tsv", Body=b"query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    put(Bucket="judged-bucket", Key="sets/scifact/corpus.jsonl", Body=b'{"_id": "d1", "text": "big"}\n')

    judged, dropped = judged_set(_ctx("s3://judged-bucket/sets/scifact/"), {"d1", "d2"})

    assert judged.queries == {"q1": "a claim"} and judged.relevant == {"q1": {"d1"}} and dropped == 0
    assert not list(tmp_path.rglob("corpus.jsonl")), "only the split's qrels and the queries are fetched"


def test_a_missing_split_on_s3_is_a_named_error(s3, tmp_path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    s3.put_object(Bucket="judged-bucket", Key="sets/x/queries.jsonl", Body=b'{"_id": "q1", "text": "a claim"}\n')
    with pytest.raises(OsftError, match=r"s3://judged-bucket/sets/x/qrels/dev\.tsv"):
        judged_set(_ctx("s3://judged-bucket/sets/x", split="dev"), {"d1"})


def test_judged_files_on_s3_are_fingerprinted_by_etag_and_a_changed_split_changes_it(s3) -> None:
    from osft.trainer.evaluate_stage import input_fingerprint

    put = s3.put_object
    put(Bucket="judged-bucket", Key="sets/x/queries.jsonl", Body=b'{"_id": "q1", "text": "a claim"}\n')
    ctx = _ctx("s3://judged-bucket/sets/x")
    missing = input_fingerprint(ctx)  # no qrels yet: the stage itself names the missing file when it runs
    put(Bucket="judged-bucket", Key="sets/x/qrels/test.tsv", Body=b"query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    first = input_fingerprint(ctx)
    assert first == input_fingerprint(ctx) and first != missing
    put(Bucket="judged-bucket", Key="sets/x/qrels/test.tsv", Body=b"query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    assert input_fingerprint(ctx) != first
