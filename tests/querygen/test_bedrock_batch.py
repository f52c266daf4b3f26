"""The ``bedrock-batch`` provider: jobs through a Stubber-backed ``bedrock`` client, files in moto S3."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from fake_bedrock import FakeBatchService
from moto import mock_aws

from osft.common.spec.querygen import BedrockOptions
from osft.querygen import bedrock_clients
from osft.querygen.bedrock_batch import plan_jobs
from osft.querygen.prompts import PromptRecord
from tests.querygen.conftest import make_docs, read_pairs, run_querygen

ROLE = "arn:aws:iam::123456789012:role/BedrockBatchRole"
MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
BATCH = {
    "region": "us-east-1",
    "staging_uri": "s3://qg-staging/batch",
    "service_role_arn": ROLE,
    "min_records_per_job": 4,
    "max_records_per_job": 8,
    "max_concurrent_jobs": 1,
    "poll_seconds": 0.001,
    "max_poll_seconds": 0.002,
    "retry_base_seconds": 0.001,
}


def job_description(arn: str, status: str, records: int, done: int) -> dict:
    """A GetModelInvocationJob response as Bedrock returns it."""
    return {
        "jobArn": arn,
        "jobName": "osft-job",
        "modelId": MODEL,
        "roleArn": ROLE,
        "status": status,
        "submitTime": datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        "lastModifiedTime": datetime(2026, 1, 5, 9, 40, tzinfo=UTC),
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://qg-staging/in.jsonl", "s3InputFormat": "JSONL"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://qg-staging/out/"}},
        "modelInvocationType": "Converse",
        "totalRecordCount": records,
        "processedRecordCount": done,
        "successRecordCount": done,
        "errorRecordCount": 0,
    }


def create_params() -> dict:
    return {
        "jobName": ANY,
        "roleArn": ROLE,
        "clientRequestToken": ANY,
        "modelId": MODEL,
        "modelInvocationType": "Converse",
        "inputDataConfig": ANY,
        "outputDataConfig": ANY,
        "timeoutDurationInHours": 72,
    }


@pytest.fixture
def s3(aws_env):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="qg-staging")
        yield client


def test_partially_completed_batch_job_retries_missing_records_on_demand(run_folder, s3, fake_converse, monkeypatch):
    # 12 records, 8 per job at most: jobs of 8 and 4, one at a time. Job 1 ends PartiallyCompleted
    # with one record missing from its output, one errored and one unparseable reply.
    service = FakeBatchService(s3, missing={"R0000000001"}, errored={"R0000000004"}, garbled={"R0000000002"})
    control = bedrock_clients.control_client("us-east-1")
    stubber = Stubber(control)
    job1, job2 = service.job_arn(1), service.job_arn(2)
    stubber.add_response("create_model_invocation_job", {"jobArn": job1}, create_params())
    stubber.add_response("get_model_invocation_job", job_description(job1, "InProgress", 8, 2), {"jobIdentifier": job1})
    stubber.add_response(
        "get_model_invocation_job", job_description(job1, "PartiallyCompleted", 8, 7), {"jobIdentifier": job1}
    )
    stubber.add_response("create_model_invocation_job", {"jobArn": job2}, create_params())
    stubber.add_response("get_model_invocation_job", job_description(job2, "Completed", 4, 4), {"jobIdentifier": job2})
    stubber.activate()
    monkeypatch.setattr(bedrock_clients, "control_client", lambda region: service.attach(control))
    converse = fake_converse()

    spec, run_dir = run_folder({"provider": "bedrock-batch", "bedrock": BATCH}, make_docs(12))
    manifest = run_querygen(spec, run_dir)

    stubber.assert_no_pending_responses()
    assert [len(ids) for ids in service.inputs] == [8, 4]
    assert sorted(converse.served) == ["d1", "d4"], "missing and errored records are retried on demand, once"
    stats = manifest.stats
    assert stats.batch_jobs == [job1, job2]
    assert stats.retried_on_demand == 2 and stats.failures == 0 and stats.unparseable_replies == 1
    assert {p["doc_id"] for p in read_pairs(run_dir)} == {f"d{i}" for i in range(12)} - {"d2"}
    # 10 batch replies were billed (the garbled one too); the missing and errored ones were not
    assert (stats.batch_input_tokens, stats.batch_output_tokens) == (10 * 400, 10 * 50)
    assert (stats.input_tokens, stats.output_tokens) == (10 * 400 + 2 * 420, 10 * 50 + 2 * 60)
    on_demand = (2 * 420 * 1.0 + 2 * 60 * 5.0) / 1e6
    batch = 0.5 * (10 * 400 * 1.0 + 10 * 50 * 5.0) / 1e6
    assert stats.estimated_cost_usd == pytest.approx(on_demand + batch)


def test_fewer_records_than_the_batch_minimum_run_on_demand_and_say_so(run_folder, fake_converse, monkeypatch):
    control = bedrock_clients.control_client("us-east-1")
    stubber = Stubber(control)  # no responses queued: any batch API call would fail the test
    stubber.activate()
    monkeypatch.setattr(bedrock_clients, "control_client", lambda region: control)
    converse = fake_converse()
    spec, run_dir = run_folder(
        {"provider": "bedrock-batch", "bedrock": {**BATCH, "min_records_per_job": 100, "max_records_per_job": 50_000}},
        make_docs(5),
    )
    manifest = run_querygen(spec, run_dir)
    assert len(converse.served) == 5
    assert "fewer than the batch minimum of 100" in manifest.stats.batch_fallback
    assert any("batch inference not used" in note for note in manifest.notes)
    assert manifest.stats.batch_jobs == []


def _records(n: int) -> list[PromptRecord]:
    return [PromptRecord(f"R{i:010d}", f"d{i}", "s", "u", ("factoid",)) for i in range(n)]


def test_large_inputs_are_split_within_record_and_size_quotas():
    records = _records(250)
    sizes = {r.record_id: 1000 for r in records}
    options = BedrockOptions(min_records_per_job=10, max_records_per_job=100, max_job_file_bytes=60_000)
    jobs, leftover = plan_jobs(records, sizes, options)
    assert [len(job) for job in jobs] == [60, 60, 60, 60, 10]
    assert not leftover


def test_a_last_job_below_the_minimum_is_balanced_or_left_for_on_demand():
    options = BedrockOptions(min_records_per_job=100, max_records_per_job=300)
    jobs, leftover = plan_jobs(_records(350), dict.fromkeys((f"R{i:010d}" for i in range(350)), 10), options)
    assert [len(job) for job in jobs] == [300 // 2 + 25, 175] and not leftover
    jobs, leftover = plan_jobs(_records(150), dict.fromkeys((f"R{i:010d}" for i in range(150)), 10), options)
    assert [len(job) for job in jobs] == [150] and not leftover
    options = BedrockOptions(min_records_per_job=100, max_records_per_job=120)
    jobs, leftover = plan_jobs(_records(150), dict.fromkeys((f"R{i:010d}" for i in range(150)), 10), options)
    assert [len(job) for job in jobs] == [120] and len(leftover) == 30


def _killed_while_polling(service, spec: str, run_dir: str, job: str, monkeypatch) -> None:
    """Run querygen until it has submitted ``job`` and is killed at its first status check."""
    from fake_bedrock import SimulatedKill

    def kill(**_):
        raise SimulatedKill("killed while polling")

    first = bedrock_clients.control_client("us-east-1")
    stubber = Stubber(first)
    stubber.add_response("create_model_invocation_job", {"jobArn": job}, create_params())
    stubber.activate()
    first.meta.events.register("provide-client-params.bedrock.GetModelInvocationJob", kill)
    monkeypatch.setattr(bedrock_clients, "control_client", lambda region: service.attach(first))
    with pytest.raises(SimulatedKill):
        run_querygen(spec, run_dir)
    # Under moto, clients of one session share event handlers: remove the first run's hooks.
    stubber.deactivate()
    first.meta.events.unregister("provide-client-params.bedrock.GetModelInvocationJob", kill)
    first.meta.events.unregister("before-parameter-build.bedrock.CreateModelInvocationJob", service._process)


def _client_that_only_polls(job: str, monkeypatch, polls: int = 1) -> Stubber:
    """A new control client whose only expected calls are ``polls`` status checks of ``job`` (Completed, 6 of
    6): creating a job again fails on it. Returns its active stubber."""
    client = bedrock_clients.control_client("us-east-1")
    stubber = Stubber(client)
    for _ in range(polls):
        stubber.add_response(
            "get_model_invocation_job", job_description(job, "Completed", 6, 6), {"jobIdentifier": job}
        )
    stubber.activate()
    monkeypatch.setattr(bedrock_clients, "control_client", lambda region: client)
    return stubber


def test_killed_batch_run_polls_its_job_again_instead_of_resubmitting(run_folder, s3, fake_converse, monkeypatch):
    service = FakeBatchService(s3, missing=set(), errored=set(), garbled=set())
    fake_converse()
    spec, run_dir = run_folder({"provider": "bedrock-batch", "bedrock": BATCH}, make_docs(6))
    job = service.job_arn(1)
    _killed_while_polling(service, spec, run_dir, job, monkeypatch)

    stubber = _client_that_only_polls(job, monkeypatch)
    manifest = run_querygen(spec, run_dir)
    stubber.assert_no_pending_responses()
    assert service.jobs == 1 and manifest.stats.batch_jobs == [job]
    assert {p["doc_id"] for p in read_pairs(run_dir)} == {f"d{i}" for i in range(6)}


def test_replies_of_a_job_outside_a_smaller_max_docs_sample_are_kept(run_folder, s3, fake_converse, monkeypatch):
    service = FakeBatchService(s3, missing=set(), errored=set(), garbled=set())
    converse = fake_converse()
    spec, run_dir = run_folder({"provider": "bedrock-batch", "bedrock": BATCH}, make_docs(6))
    job = service.job_arn(1)
    _killed_while_polling(service, spec, run_dir, job, monkeypatch)

    data = json.loads(Path(spec).read_text())
    for max_docs, polls in ((3, 1), (None, 0)):  # the job of 6 finishes while a sample of 3 is asked
        data["querygen"]["max_docs"] = max_docs
        Path(spec).write_text(json.dumps(data))
        stubber = _client_that_only_polls(job, monkeypatch, polls)
        manifest = run_querygen(spec, run_dir)
        stubber.assert_no_pending_responses()
        stubber.deactivate()
        assert manifest.stats.documents_queried == (max_docs or 6)
        assert len({p["doc_id"] for p in read_pairs(run_dir)}) == (max_docs or 6)
    assert service.jobs == 1 and not converse.served, "every document was answered by the one batch job"


def test_a_batch_job_that_failed_as_a_whole_stops_the_run_without_on_demand_retries(
    run_folder, s3, fake_converse, monkeypatch
):
    from osft.common.errors import ServiceError

    service = FakeBatchService(s3, missing={f"R{i:010d}" for i in range(6)}, errored=set(), garbled=set())
    control = bedrock_clients.control_client("us-east-1")
    stubber = Stubber(control)
    job = service.job_arn(1)
    failed = job_description(job, "Failed", 6, 0)
    failed["message"] = "Bedrock does not have permission to read s3://qg-staging/batch (AccessDenied)."
    stubber.add_response("create_model_invocation_job", {"jobArn": job}, create_params())
    stubber.add_response("get_model_invocation_job", failed, {"jobIdentifier": job})
    stubber.activate()
    monkeypatch.setattr(bedrock_clients, "control_client", lambda region: service.attach(control))
    converse = fake_converse()
    spec, run_dir = run_folder({"provider": "bedrock-batch", "bedrock": BATCH}, make_docs(6))
    with pytest.raises(ServiceError, match="does not have permission to read"):
        run_querygen(spec, run_dir)
    assert not converse.served
    assert json.loads((Path(run_dir) / "querygen/_work/batch_jobs.json").read_text()) == []


def test_batch_staging_and_role_default_to_the_s3_run_folder_and_the_task_role(monkeypatch):
    from types import SimpleNamespace

    from osft.common.errors import OsftError
    from osft.common.spec.querygen import BedrockOptions
    from osft.querygen.llm_generation import batch_options

    role = "arn:aws:iam::123456789012:role/osft-bedrock-batch"
    monkeypatch.setenv("OSFT_BEDROCK_BATCH_ROLE_ARN", role)
    resolved = batch_options(SimpleNamespace(run_dir="s3://runs-bucket/runs/r1"), BedrockOptions())
    assert (resolved.staging_uri, resolved.service_role_arn) == ("s3://runs-bucket/runs/r1/querygen/_bedrock", role)
    with pytest.raises(OsftError, match="staging_uri"):
        batch_options(SimpleNamespace(run_dir="/tmp/local-run"), BedrockOptions())
    monkeypatch.delenv("OSFT_BEDROCK_BATCH_ROLE_ARN")
    with pytest.raises(OsftError, match="service_role_arn"):
        batch_options(SimpleNamespace(run_dir="s3://runs-bucket/runs/r1"), BedrockOptions())


def test_sharing_the_last_job_keeps_both_parts_within_the_byte_quota():
    # Job 1 is full by bytes (10 x 10 = 100); job 2 has 2 records of 40 bytes, below the minimum of 3.
    # Cutting the 12 at the middle would give the second part 4 x 10 + 80 = 120 bytes, over the quota.
    records = _records(12)
    sizes = {r.record_id: 10 if i < 10 else 40 for i, r in enumerate(records)}
    options = BedrockOptions(min_records_per_job=3, max_records_per_job=100, max_job_file_bytes=100)
    jobs, leftover = plan_jobs(records, sizes, options)
    assert [len(job) for job in jobs] == [8, 4] and not leftover
    assert all(sum(sizes[r.record_id] for r in job) <= 100 for job in jobs)
    # No cut can give both parts the minimum within the quota: the small last job runs on demand.
    sizes = {r.record_id: 10 if i < 10 else 50 for i, r in enumerate(records)}
    jobs, leftover = plan_jobs(records, sizes, options)
    assert [len(job) for job in jobs] == [10] and len(leftover) == 2


def test_output_lines_are_split_at_newlines_only(run_folder, s3, fake_converse, monkeypatch):
    # Bedrock leaves U+2028 and U+0085 unescaped in JSON strings, and echoes each document in
    # modelInput: splitting there would make the record look missing and pay for it again on demand.
    docs = make_docs(6)
    docs[2]["text"] += " Measured\u2028at dawn\x85and dusk."
    service = FakeBatchService(s3, missing=set(), errored=set(), garbled=set())
    control = bedrock_clients.control_client("us-east-1")
    stubber = Stubber(control)
    job = service.job_arn(1)
    stubber.add_response("create_model_invocation_job", {"jobArn": job}, create_params())
    stubber.add_response("get_model_invocation_job", job_description(job, "Completed", 6, 6), {"jobIdentifier": job})
    stubber.activate()
    monkeypatch.setattr(bedrock_clients, "control_client", lambda region: service.attach(control))
    converse = fake_converse()
    spec, run_dir = run_folder({"provider": "bedrock-batch", "bedrock": BATCH}, docs)
    manifest = run_querygen(spec, run_dir)
    assert not converse.served and manifest.stats.retried_on_demand == 0
    assert {p["doc_id"] for p in read_pairs(run_dir)} == {f"d{i}" for i in range(6)}


def test_throttled_job_creation_waits_and_tries_again(run_folder, s3, fake_converse, monkeypatch):
    service = FakeBatchService(s3, missing=set(), errored=set(), garbled=set())
    control = bedrock_clients.control_client("us-east-1")
    stubber = Stubber(control)
    job = service.job_arn(1)
    stubber.add_client_error("create_model_invocation_job", "ThrottlingException", "Rate exceeded", 429)
    stubber.add_response("create_model_invocation_job", {"jobArn": job}, create_params())
    stubber.add_response("get_model_invocation_job", job_description(job, "Completed", 6, 6), {"jobIdentifier": job})
    stubber.activate()
    monkeypatch.setattr(bedrock_clients, "control_client", lambda region: service.attach(control))
    converse = fake_converse()
    spec, run_dir = run_folder({"provider": "bedrock-batch", "bedrock": BATCH}, make_docs(6))
    manifest = run_querygen(spec, run_dir)
    stubber.assert_no_pending_responses()
    assert manifest.stats.batch_jobs == [job] and not converse.served


def test_fixing_the_role_or_the_job_quota_keeps_the_job_in_flight(run_folder, s3, fake_converse, monkeypatch):
    # The failure message says to fix the role, the quota error to lower max_concurrent_jobs: neither
    # changes what the model is asked, so the job already submitted is polled, not submitted again.
    service = FakeBatchService(s3, missing=set(), errored=set(), garbled=set())
    converse = fake_converse()
    spec, run_dir = run_folder({"provider": "bedrock-batch", "bedrock": BATCH}, make_docs(6))
    job = service.job_arn(1)
    _killed_while_polling(service, spec, run_dir, job, monkeypatch)

    data = json.loads(Path(spec).read_text())
    data["querygen"]["bedrock"].update(
        service_role_arn="arn:aws:iam::123456789012:role/FixedBatchRole", max_concurrent_jobs=2, max_retries=3
    )
    Path(spec).write_text(json.dumps(data))
    stubber = _client_that_only_polls(job, monkeypatch)
    manifest = run_querygen(spec, run_dir)
    stubber.assert_no_pending_responses()
    assert service.jobs == 1 and manifest.stats.batch_jobs == [job] and not converse.served


def test_a_lost_connection_while_submitting_or_polling_waits_for_the_next_round(
    run_folder, s3, fake_converse, monkeypatch
):
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    service = FakeBatchService(s3, missing=set(), errored=set(), garbled=set())
    control = bedrock_clients.control_client("us-east-1")
    stubber = Stubber(control)
    job = service.job_arn(1)
    stubber.add_response("create_model_invocation_job", {"jobArn": job}, create_params())
    stubber.add_response("get_model_invocation_job", job_description(job, "Completed", 6, 6), {"jobIdentifier": job})
    stubber.activate()
    failures = {
        "CreateModelInvocationJob": ReadTimeoutError(endpoint_url="https://bedrock"),
        "GetModelInvocationJob": EndpointConnectionError(endpoint_url="https://bedrock"),
    }

    def first_call_fails(model, **_):
        if (error := failures.pop(model.name, None)) is not None:
            raise error

    control.meta.events.register("provide-client-params.bedrock", first_call_fails)
    monkeypatch.setattr(bedrock_clients, "control_client", lambda region: service.attach(control))
    converse = fake_converse()
    spec, run_dir = run_folder({"provider": "bedrock-batch", "bedrock": BATCH}, make_docs(6))
    try:
        manifest = run_querygen(spec, run_dir)
    finally:
        control.meta.events.unregister("provide-client-params.bedrock", first_call_fails)
    stubber.assert_no_pending_responses()
    assert not failures and service.jobs == 1 and manifest.stats.batch_jobs == [job] and not converse.served


def test_a_stopped_batch_job_keeps_its_replies_and_a_rerun_batches_the_rest(run_folder, s3, fake_converse, monkeypatch):
    from osft.common.errors import ServiceError

    # Stopped after half its records: the other three must not run on demand (twice the price) unasked.
    unanswered = {f"R{i:010d}" for i in (1, 3, 5)}
    service = FakeBatchService(s3, missing=set(unanswered), errored=set(), garbled=set())
    control = bedrock_clients.control_client("us-east-1")
    stubber = Stubber(control)
    job1, job2 = service.job_arn(1), service.job_arn(2)
    stubber.add_response("create_model_invocation_job", {"jobArn": job1}, create_params())
    stubber.add_response("get_model_invocation_job", job_description(job1, "Stopped", 6, 3), {"jobIdentifier": job1})
    stubber.activate()
    monkeypatch.setattr(bedrock_clients, "control_client", lambda region: service.attach(control))
    converse = fake_converse()
    batch = {**BATCH, "min_records_per_job": 2}  # the rest (3) still makes a batch job
    spec, run_dir = run_folder({"provider": "bedrock-batch", "bedrock": batch}, make_docs(6))
    with pytest.raises(ServiceError, match="was stopped: 3 of its 6 records were answered") as raised:
        run_querygen(spec, run_dir)
    assert "rerun" in raised.value.hint
    assert not converse.served

    service.missing.clear()
    stubber.add_response("create_model_invocation_job", {"jobArn": job2}, create_params())
    stubber.add_response("get_model_invocation_job", job_description(job2, "Completed", 3, 3), {"jobIdentifier": job2})
    manifest = run_querygen(spec, run_dir)
    stubber.assert_no_pending_responses()
    assert service.inputs[1] == sorted(unanswered), "only the records the stopped job did not run"
    assert not converse.served and manifest.stats.retried_on_demand == 0
    assert {p["doc_id"] for p in read_pairs(run_dir)} == {f"d{i}" for i in range(6)}
