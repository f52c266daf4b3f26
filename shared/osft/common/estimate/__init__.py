"""``osft estimate``: what a run will cost, by stage, before anything spends money.

The corpus is measured, not guessed: the extract stage runs first (it reads and cleans the
documents and spends nothing) and a sample of its output is tokenized. The estimate is written to
``<run_dir>/estimate.json`` so the report can put it beside what the stages counted.
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection
from pathlib import Path

from osft.common.errors import OsftError, QuotaError, StorageError
from osft.common.estimate.build import build_estimate
from osft.common.estimate.corpus_sample import count_tokens_function, sample_corpus
from osft.common.estimate.cost_model import OPENAI_PRICE_FIELD
from osft.common.estimate.model import ESTIMATE_FILE, Estimate, LineItem
from osft.common.estimate.prices import PriceTable, load_price_table
from osft.common.estimate.prompt_size import measure_prompt, spec_relative
from osft.common.estimate.render import render_comparison, render_estimate, usd
from osft.common.manifests import ExtractManifest, QuerygenManifest, StageManifest
from osft.common.registry import load_stage
from osft.common.spec import RunSpec
from osft.common.stage import is_up_to_date, load_spec, read_manifest, run_stage
from osft.common.storage import Location, is_s3, join


def count_log_queries(spec: RunSpec, spec_uri: str | None, querygen: StageManifest | None) -> int:
    """Queries in the spec's query log: as querygen counted them, else the log file's non-blank lines."""
    if spec.querygen.query_log is None:
        return 0
    if isinstance(querygen, QuerygenManifest) and "log_queries" in querygen.counts:
        return querygen.counts["log_queries"]
    path = spec_relative(spec_uri, spec.querygen.query_log.path)
    if path is None:
        return 0
    try:
        return sum(1 for line in Location(path).read_text().splitlines() if line.strip())
    except StorageError:
        return 0  # querygen reports a missing log clearly; the estimate just leaves it out


def _querygen_up_to_date(manifest: StageManifest, spec_uri: str | None, run_dir: str) -> bool:
    """Whether querygen's counts in the run folder are what this spec would produce."""
    if spec_uri is None:
        return False
    try:
        definition = load_stage("querygen")
    except OsftError:
        return False  # the querygen package is not installed here: its fingerprint cannot be checked
    return is_up_to_date(definition, manifest, spec_uri, run_dir)


def estimate_from_run_dir(
    spec: RunSpec,
    run_dir: str,
    prices: PriceTable | None = None,
    spec_uri: str | None = None,
    *,
    on_sagemaker: bool = False,
) -> Estimate:
    """Estimate from a run folder whose extract stage has completed; writes ``estimate.json`` there.

    Train and evaluate are priced as SageMaker jobs when ``training.compute`` is ``sagemaker`` or
    ``on_sagemaker`` says so: the AWS state machine's cost guard passes it (``osft estimate --sagemaker``),
    since the state machine runs them as SageMaker jobs whatever the spec says.

    ``spec_uri`` locates spec-relative inputs: the query log (its pairs are counted before querygen runs),
    ``prompt_dir`` and ``examples_path`` (measured for the prompt size).
    """
    prices = prices or load_price_table()
    extract = read_manifest(run_dir, "extract")
    if not isinstance(extract, ExtractManifest):
        raise QuotaError(
            f"cannot estimate: the extract stage has not completed in {run_dir}",
            hint="run 'osft estimate SPEC' without --run-dir, or 'extract run' first",
        )
    assumptions = prices.data["querygen_assumptions"]
    with tempfile.TemporaryDirectory(prefix="osft-estimate-") as cache:
        sample = sample_corpus(
            run_dir, extract, spec.querygen.max_document_chars, assumptions["chars_per_token_fallback"], Path(cache)
        )
    querygen = read_manifest(run_dir, "querygen")
    if querygen is not None and not _querygen_up_to_date(querygen, spec_uri, run_dir):
        querygen = None  # written for another spec (say a smaller max_docs): estimate from this one
    known = user_pairs = None
    if isinstance(querygen, QuerygenManifest):
        known = querygen.stats.train_pairs
    elif extract.stats.pairs_file:
        user_pairs = extract.stats.pairs_written  # querygen will hold some out
    prompt = None
    if spec.querygen.uses_llm:
        count, _ = count_tokens_function(assumptions["chars_per_token_fallback"])
        prompt = measure_prompt(spec.querygen, spec_uri, count, assumptions)
    sagemaker = on_sagemaker or spec.training.compute == "sagemaker"
    estimate = build_estimate(
        spec,
        sample,
        prices,
        on_aws=is_s3(run_dir) or sagemaker,
        train_pairs_known=known,
        log_queries=count_log_queries(spec, spec_uri, querygen),
        prompt=prompt,
        user_pairs=user_pairs,
        sagemaker=sagemaker,
    )
    if sagemaker and spec.training.compute != "sagemaker":
        estimate.notes.append(
            "train and evaluate priced as SageMaker jobs on training.sagemaker.instance_type: the AWS state "
            "machine runs them there whatever training.compute says"
        )
    Location(join(run_dir, ESTIMATE_FILE)).write_text(estimate.model_dump_json(indent=2))
    return estimate


def estimate_run(spec_uri: str, run_dir: str | None = None, *, on_sagemaker: bool = False) -> Estimate:
    """Run (or reuse) the extract stage, then estimate. Without ``run_dir`` a temporary folder is used."""
    from osft.common.runner import check_run_folder_owner  # the runner imports this module

    if run_dir is not None:
        check_run_folder_owner(load_spec(spec_uri), run_dir)
    with tempfile.TemporaryDirectory(prefix="osft-estimate-run-") as scratch:
        folder = run_dir or scratch
        run_stage(load_stage("extract"), spec_uri, folder)
        if not is_s3(folder):
            folder = str(Path(folder).resolve())
        return estimate_from_run_dir(load_spec(spec_uri), folder, spec_uri=spec_uri, on_sagemaker=on_sagemaker)


def check_budget(estimate: Estimate, stages: Collection[str] | None = None) -> None:
    """Raise QuotaError when the estimate exceeds ``max_cost_usd`` or cannot be checked against it.

    ``stages``: only the cost of these stages counts (a run stopped early by ``--until`` spends no more).
    """
    limit = estimate.max_cost_usd
    if limit is None:
        return
    # The endpoint's monthly cost is not counted against max_cost_usd, so its missing price cannot block the run.
    counted = estimate.budget_items(stages)
    unpriced = [i for i in counted if i.usd is None]
    if unpriced:
        raise QuotaError(
            f"max_cost_usd: cannot check the budget of {usd(limit)}: no price for "
            + "; ".join(f"{i.stage}: {i.item}" for i in unpriced),
            hint=_price_hint(unpriced),
        )
    total = round(sum(i.usd or 0.0 for i in counted), 4)
    if total > limit:
        biggest = max(counted, key=lambda i: i.usd or 0)
        scope = "the run" if stages is None else f"the run up to {list(stages)[-1]}"
        raise QuotaError(
            f"max_cost_usd: {scope} is estimated at {usd(total)}, over the limit of {usd(limit)}; "
            f"nothing has been spent yet. Largest item: {biggest.stage}: {biggest.item} ({usd(biggest.usd or 0)})",
            hint="raise max_cost_usd, sample fewer documents (sampling.max_docs), lower querygen.queries_per_doc, "
            "use bedrock-batch or a cheaper model_id; 'osft estimate SPEC' prints every line",
        )


def _price_hint(unpriced: list[LineItem]) -> str:
    if any(OPENAI_PRICE_FIELD in i.item for i in unpriced):
        return (
            f"give the endpoint's price as {OPENAI_PRICE_FIELD} (USD per million tokens; "
            '{"input": 0, "output": 0} for a self-hosted server), or remove max_cost_usd from the spec'
        )
    return (
        "add the model or instance type to the price table (osft/common/data/prices.json or the querygen "
        "Bedrock table), or remove max_cost_usd from the spec"
    )


__all__ = [
    "ESTIMATE_FILE",
    "Estimate",
    "LineItem",
    "check_budget",
    "estimate_from_run_dir",
    "estimate_run",
    "load_price_table",
    "render_comparison",
    "render_estimate",
]
