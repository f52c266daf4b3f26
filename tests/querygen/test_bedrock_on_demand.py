"""The ``bedrock`` provider (Converse on demand) through ``run_stage``, against a boto3-level fake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_bedrock import SimulatedKill

from tests.querygen.conftest import make_docs, read_pairs, run_querygen

FAST = {"retry_base_seconds": 0.001, "max_retries": 12, "region": "us-east-1"}


def test_bedrock_on_demand_generates_two_queries_per_document(run_folder, fake_converse):
    fake = fake_converse()
    spec, run_dir = run_folder({"provider": "bedrock", "bedrock": FAST}, make_docs(6))
    manifest = run_querygen(spec, run_dir)
    pairs = read_pairs(run_dir)
    assert sorted({p["doc_id"] for p in pairs}) == [f"d{i}" for i in range(6)]
    assert {p["kind"] for p in pairs} == {"factoid", "conceptual"}
    stats = manifest.stats
    assert fake.model_ids == {"us.anthropic.claude-haiku-4-5-20251001-v1:0"}
    assert (stats.records, stats.requests, stats.input_tokens, stats.output_tokens) == (6, 6, 6 * 420, 6 * 60)
    # Haiku 4.5 at $1 / $5 per million tokens, on demand
    assert stats.estimated_cost_usd == pytest.approx((6 * 420 * 1.0 + 6 * 60 * 5.0) / 1e6)
    assert "2025" in stats.price_table


def test_throttling_on_30_percent_of_calls_loses_no_document(run_folder, fake_converse):
    fake = fake_converse(throttle_rate=0.3)
    spec, run_dir = run_folder({"provider": "bedrock", "bedrock": {**FAST, "max_concurrency": 4}}, make_docs(24))
    manifest = run_querygen(spec, run_dir)
    assert fake.throttled >= 5
    assert sorted(fake.served) == sorted(f"d{i}" for i in range(24))
    assert set(fake.served.values()) == {1}
    assert manifest.stats.failures == 0
    assert manifest.stats.requests == fake.calls
    assert len({p["doc_id"] for p in read_pairs(run_dir)}) == 24


def test_model_errors_the_model_may_not_repeat_are_asked_again(run_folder, fake_converse):
    fake = fake_converse(throttle_rate=0.3, refusal=("ModelErrorException", 424))
    spec, run_dir = run_folder({"provider": "bedrock", "bedrock": {**FAST, "max_concurrency": 2}}, make_docs(10))
    manifest = run_querygen(spec, run_dir)
    assert fake.throttled >= 2 and sorted(fake.served) == sorted(f"d{i}" for i in range(10))
    assert manifest.stats.failures == 0


def test_malformed_model_output_is_counted_and_skipped(run_folder, fake_converse):
    malformed = {
        "d0": "Sure! Here are some queries you could use for this document.",
        "d1": '{"queries": [{"type": "factoid", "query": "cut sho',
        "d2": 'Here you go:\n```json\n{"queries": [{"type": "factoid", "query": "glacier melt in the alps"}]}\n```',
        "d3": '{"queries": []}',
    }
    fake_converse(malformed=malformed)
    spec, run_dir = run_folder({"provider": "bedrock", "bedrock": FAST}, make_docs(6))
    manifest = run_querygen(spec, run_dir)
    docs = {p["doc_id"] for p in read_pairs(run_dir)}
    assert docs == {"d2", "d4", "d5"}
    assert manifest.stats.unparseable_replies == 3
    assert any("could not be parsed" in note for note in manifest.notes)


def test_replies_stopped_at_max_tokens_keep_their_whole_queries_and_say_which_setting_to_raise(
    run_folder, fake_converse
):
    cut = '{"queries": [{"type": "factoid", "query": "which cohort had the largest glacier melt"}, {"type": "conc'
    fake_converse(
        malformed={"d0": cut, "d1": '{"queries": [{"type": "fac', "d2": "Sorry, the model cannot answer that."},
        stop_reasons={"d0": "max_tokens", "d1": "max_tokens", "d2": "guardrail_intervened"},
    )
    spec, run_dir = run_folder({"provider": "bedrock", "bedrock": FAST}, make_docs(4))
    manifest = run_querygen(spec, run_dir)
    by_doc = {p["doc_id"]: p["query"] for p in read_pairs(run_dir) if p["doc_id"] in ("d0", "d1", "d2")}
    assert by_doc == {"d0": "which cohort had the largest glacier melt"}
    assert manifest.stats.unparseable_replies == 2
    notes = " ".join(manifest.notes)
    assert "2 reply(ies) stopped at the token limit (1 kept" in notes and "querygen.bedrock.max_tokens" in notes
    assert "1 reply(ies) ended with stop reason guardrail_intervened" in notes
    records = [json.loads(line) for line in (Path(run_dir) / "querygen/_work/records.jsonl").open()]
    assert {r["error"].split(":")[0] for r in records if r["status"] == "unparseable"} == {
        "stopped by max_tokens",
        "stopped by guardrail_intervened",
    }


def test_killed_querygen_resumes_without_duplicates(run_folder, fake_converse):
    spec, run_dir = run_folder({"provider": "bedrock", "bedrock": {**FAST, "max_concurrency": 1}}, make_docs(10))
    first = fake_converse(kill_after=5)
    with pytest.raises(SimulatedKill):
        run_querygen(spec, run_dir)
    done = [json.loads(line)["record_id"] for line in (Path(run_dir) / "querygen/_work/records.jsonl").open()]
    assert len(done) == 4
    second = fake_converse()
    manifest = run_querygen(spec, run_dir)
    assert not set(first.served) & set(second.served), "no document is sent again after a resume"
    assert sorted([*first.served, *second.served]) == sorted(f"d{i}" for i in range(10))
    pairs = read_pairs(run_dir)
    assert len(pairs) == 20 and len({p["query"] for p in pairs}) == 20
    assert manifest.stats.records == 10 and manifest.stats.requests == 10


def test_access_denied_stops_with_a_clear_error(run_folder, aws_env, monkeypatch):
    from botocore.stub import Stubber

    from osft.common.errors import CredentialsError
    from osft.querygen import bedrock_clients

    real = bedrock_clients.runtime_client

    def denied(*args, **kwargs):
        client = real(*args, **kwargs)
        stubber = Stubber(client)
        stubber.add_client_error(
            "converse", "AccessDeniedException", "You don't have access to the model with the specified model ID.", 403
        )
        stubber.activate()
        return client

    monkeypatch.setattr(bedrock_clients, "runtime_client", denied)
    spec, run_dir = run_folder({"provider": "bedrock", "bedrock": {**FAST, "max_concurrency": 1}}, make_docs(1))
    with pytest.raises(CredentialsError, match="bedrock:InvokeModel"):
        run_querygen(spec, run_dir)


def test_killed_querygen_on_an_s3_run_folder_resumes_from_saved_work(tmp_path, fake_converse):
    import boto3
    from moto import mock_aws

    from osft.common.storage import Location
    from tests.querygen.conftest import write_extract_output, write_spec

    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="runs")
        write_extract_output(tmp_path / "local-run", make_docs(8))
        Location("s3://runs/qg/extract").publish(tmp_path / "local-run" / "extract")
        spec = str(write_spec(tmp_path, {"provider": "bedrock", "bedrock": {**FAST, "max_concurrency": 1}}))
        first = fake_converse(kill_after=4)
        with pytest.raises(SimulatedKill):
            run_querygen(spec, "s3://runs/qg")
        assert Location("s3://runs/qg/querygen/_work/records.jsonl").exists()
        second = fake_converse()
        manifest = run_querygen(spec, "s3://runs/qg")
        assert sorted([*first.served, *second.served]) == sorted(f"d{i}" for i in range(8))
        assert manifest.stats.records == 8 and Location("s3://runs/qg/querygen/train.jsonl").exists()


def test_a_run_stopped_by_an_outage_asks_the_failed_documents_again(run_folder, fake_converse):
    from osft.common.errors import ServiceError

    spec, run_dir = run_folder(
        {"provider": "bedrock", "bedrock": {**FAST, "max_retries": 0, "max_concurrency": 1}}, make_docs(4)
    )
    fake_converse(throttle_rate=1.0)
    with pytest.raises(ServiceError, match="every one of 4 model calls failed"):
        run_querygen(spec, run_dir)
    second = fake_converse()  # the failed calls cost nothing: the rerun asks them again, as the hint says
    manifest = run_querygen(spec, run_dir)
    assert sorted(second.served) == [f"d{i}" for i in range(4)]
    assert manifest.stats.failures == 0 and len(read_pairs(run_dir)) == 8


def test_read_timeouts_are_retried_like_throttling(run_folder, fake_converse):
    fake = fake_converse(lost_connections=3)
    spec, run_dir = run_folder({"provider": "bedrock", "bedrock": {**FAST, "max_concurrency": 1}}, make_docs(3))
    manifest = run_querygen(spec, run_dir)
    assert sorted(fake.served) == ["d0", "d1", "d2"]
    assert manifest.stats.failures == 0 and manifest.stats.requests == 3 + 3


def test_a_line_cut_short_by_a_kill_does_not_swallow_the_next_record(tmp_path):
    from osft.querygen.record_log import RecordLog, RecordResult

    path = tmp_path / "records.jsonl"
    path.write_text(
        json.dumps({"record_id": "R1", "doc_id": "d1", "status": "ok", "mode": "on-demand"})
        + '\n{"record_id": "R2", "doc_'
    )
    log = RecordLog(path)
    assert set(log.done) == {"R1"}
    log.append(RecordResult("R3", "d3", "ok", "on-demand", [("a query", "factoid")]))
    assert set(RecordLog(path).done) == {"R1", "R3"}


def test_a_base_model_id_that_needs_an_inference_profile_stops_at_the_first_call(run_folder, aws_env, monkeypatch):
    from botocore.stub import Stubber

    from osft.common.errors import ServiceError
    from osft.querygen import bedrock_clients

    real = bedrock_clients.runtime_client
    stubbers: list[Stubber] = []
    message = (
        "Invocation of model ID anthropic.claude-haiku-4-5-20251001-v1:0 with on-demand throughput isn\u2019t "
        "supported. Retry your request with the ID or ARN of an inference profile that contains this model."
    )

    def refused(*args, **kwargs):
        client = real(*args, **kwargs)
        stubbers.append(Stubber(client))
        for _ in range(3):
            stubbers[-1].add_client_error("converse", "ValidationException", message, 400)
        stubbers[-1].activate()
        return client

    monkeypatch.setattr(bedrock_clients, "runtime_client", refused)
    querygen = {"provider": "bedrock", "model_id": "anthropic.claude-haiku-4-5-20251001-v1:0"}
    spec, run_dir = run_folder({**querygen, "bedrock": {**FAST, "max_concurrency": 1}}, make_docs(3))
    with pytest.raises(ServiceError, match=r"(?s)querygen\.model_id.*inference-profile id"):
        run_querygen(spec, run_dir)
    assert len(stubbers[0]._queue) == 2, "one call, not one per document"
