"""Line items by stage, from the spec, a corpus sample and the price table.

Each function prices one part of the run. The rules are deliberately simple and stated in the
item text, so a user can check them against the bill and ``docs/estimate.md``:

- querygen: one prompt per document; input = the templates in force + few-shot examples + the
  document (cut at ``max_document_chars``), output = ``queries_per_doc`` queries (at most ``max_tokens``);
- training: the pairs and epochs the train stage will use (``osft.common.training_defaults``),
  examples seen / pairs-per-second of the compute and model size (scaled by ``256 / max_seq_length``,
  and by the extra texts hard negatives add), plus mining, teacher scoring, choosing the merge
  ratio and SageMaker's start-up billing;
- evaluation: the corpus encoded twice (base and tuned), and its passages twice more when passage vectors
  are scored (about as many tokens as the corpus);
- endpoint: real-time instance hours vs serverless GB-seconds at the expected request rate;
- on AWS: Fargate time of extract/querygen, S3 storage, Step Functions transitions.
"""

from __future__ import annotations

from dataclasses import dataclass

from osft.common.estimate.corpus_sample import CorpusSample
from osft.common.estimate.model import Expected, LineItem
from osft.common.estimate.prices import PriceTable
from osft.common.estimate.prompt_size import PromptSize
from osft.common.spec import RunSpec
from osft.common.spec.querygen import QueryGen, heldout_count, kept_count
from osft.common.training_defaults import (
    BATCH_BY_MODEL_SIZE,
    CACHED_MNRL_BATCH,
    MERGE_CORPUS_SAMPLE,
    SPARSE_BATCH_SIZE,
    pairs_and_epochs,
)

DAYS_PER_MONTH = 30.4
REFERENCE_SEQ_LENGTH = 256
MODEL_GB = {"small": 0.09, "base": 0.44, "large": 1.34}
FARGATE_VCPU, FARGATE_GB = 1.0, 4.0
BATCH_JOB_TASK_HOURS = 1.0
OPENAI_PRICE_FIELD = "cost.openai_usd_per_million_tokens"


def model_size(name: str) -> str:
    """small / base / large from a model id or folder name (MiniLM and *-small-* count as small)."""
    lowered = name.lower()
    if "large" in lowered:
        return "large"
    if "small" in lowered or "minilm" in lowered or "tiny" in lowered:
        return "small"
    return "base"


@dataclass(frozen=True)
class Context:
    spec: RunSpec
    sample: CorpusSample
    prices: PriceTable
    on_aws: bool
    train_pairs_known: int | None = None
    """Training pairs already written by querygen (or given as pairs), when the run folder has them."""
    log_queries: int = 0
    """Queries in the spec's query log (``querygen.query_log``), 0 without one."""
    prompt: PromptSize | None = None
    """Tokens of a prompt beyond its document (templates and examples); None: not measured (LLM-less runs)."""
    user_pairs: int | None = None
    """Labelled pairs of a ``pairs`` source, before querygen holds some out (when querygen has not run)."""
    sagemaker: bool = False
    """Train and evaluate run as SageMaker jobs (``training.compute``, or the AWS state machine)."""


def queried_documents(ctx: Context) -> int:
    """Documents querygen will generate for: the corpus, or at most ``querygen.max_docs`` of it."""
    return min(ctx.sample.documents, ctx.spec.querygen.max_docs or ctx.sample.documents)


def heldout_documents(documents: int, qg: QueryGen) -> int:
    """Documents querygen holds out (the count its split draws)."""
    return heldout_count(documents, qg.heldout_fraction, qg.max_heldout_docs)


def generated_train_pairs(ctx: Context) -> int:
    """Training pairs querygen writes: counted when it ran, else from the spec and the corpus."""
    qg = ctx.spec.querygen
    if ctx.train_pairs_known is not None:
        return ctx.train_pairs_known
    if ctx.user_pairs is not None:  # split by document; each pair taken as its own document
        return ctx.user_pairs - heldout_documents(ctx.user_pairs, qg)
    documents = queried_documents(ctx)
    return (documents - heldout_documents(documents, qg)) * qg.queries_per_doc


def querygen_items(ctx: Context, expected: Expected) -> list[LineItem]:
    qg, sample, prices = ctx.spec.querygen, ctx.sample, ctx.prices
    if not qg.uses_llm or ctx.spec.source.type == "pairs":  # querygen sends labelled pairs to no model
        what = "your labelled pairs (no LLM)" if ctx.spec.source.type == "pairs" else "offline generator (no LLM)"
        seconds = queried_documents(ctx) / prices.data["throughput"]["offline_querygen_docs_per_second"]
        return [LineItem(stage="querygen", item=what, quantity=0, unit="tokens", usd=0.0)] + (
            _fargate("querygen", seconds, prices) if ctx.on_aws else []
        )
    assume = prices.data["querygen_assumptions"]
    assert ctx.prompt is not None, "build_estimate measures the prompt for LLM providers"
    input_per_record = ctx.prompt.tokens + sample.mean_prompt_tokens
    output_per_record = assume["output_overhead_tokens"] + qg.queries_per_doc * assume["output_tokens_per_query"]
    max_tokens = qg.openai.max_tokens if qg.provider == "openai" else qg.bedrock.max_tokens
    output_per_record = min(output_per_record, max_tokens)  # the reply is cut there, and billed no further
    records = queried_documents(ctx)
    expected.input_tokens = round(records * input_per_record)
    expected.output_tokens = round(records * output_per_record)
    tokens = f"{records:,} prompts × ({input_per_record:,.0f} in + {output_per_record:,.0f} out) tokens"
    model_id = qg.resolved_model_id or "?"
    if qg.provider == "openai":
        return [_openai_item(ctx, f"OpenAI-compatible '{model_id}': {tokens}", expected)]
    row = prices.bedrock_price(model_id)
    unit = prices.bedrock.get("unit_tokens", 1_000_000)
    discount = prices.bedrock.get("batch_discount", 0.5)
    on_demand = None
    if row is not None:
        on_demand = (expected.input_tokens * row["input"] + expected.output_tokens * row["output"]) / unit
    batch = None if on_demand is None else on_demand * discount
    use_batch = qg.provider == "bedrock-batch" and records >= qg.bedrock.min_records_per_job
    items = [
        LineItem(
            stage="querygen",
            item=f"Bedrock batch {model_id}: {tokens} at {discount:g}× on-demand",
            quantity=expected.input_tokens + expected.output_tokens,
            unit="tokens",
            usd=_round(batch),
            alternative=not use_batch,
        ),
        LineItem(
            stage="querygen",
            item=f"Bedrock on-demand {model_id}: {tokens}",
            quantity=expected.input_tokens + expected.output_tokens,
            unit="tokens",
            usd=_round(on_demand),
            alternative=use_batch,
        ),
    ]
    if ctx.on_aws:
        rate = prices.data["throughput"]["llm_records_per_second_on_demand"] * qg.bedrock.max_concurrency / 8
        hours = BATCH_JOB_TASK_HOURS if use_batch else records / rate / 3600
        items += _fargate("querygen", hours * 3600, prices)
    return items


def _openai_item(ctx: Context, what: str, expected: Expected) -> LineItem:
    """The endpoint's tokens, priced only when the spec gives its price (no table knows a self-hosted server's)."""
    price = ctx.spec.cost.openai_usd_per_million_tokens
    quantity = expected.input_tokens + expected.output_tokens
    if price is None:
        return LineItem(
            stage="querygen", item=f"{what} (no price: set {OPENAI_PRICE_FIELD})", quantity=quantity, unit="tokens"
        )
    cost = (expected.input_tokens * price.input + expected.output_tokens * price.output) / 1_000_000
    return LineItem(
        stage="querygen",
        item=f"{what} at ${price.input:g} in + ${price.output:g} out per million ({OPENAI_PRICE_FIELD})",
        quantity=quantity,
        unit="tokens",
        usd=_round(cost),
    )


def passage_vectors_scored(spec: RunSpec) -> bool:
    """Evaluate embeds every passage too, once per model: asked for, or deployed and so compared by the gate.

    Both only for dense models with judged queries (``osft.trainer.gated_search``).
    """
    if spec.evaluation.judged is None or spec.model.type != "dense":
        return False
    opensearch = spec.deploy.opensearch if spec.deploy is not None else None
    deployed = opensearch is not None and opensearch.passage_vectors is not None
    return spec.evaluation.passage_vectors or (deployed and spec.evaluation.decide_on == "search")


def training_items(ctx: Context, expected: Expected) -> list[LineItem]:
    spec, prices = ctx.spec, ctx.prices
    training = spec.training
    size = model_size(spec.model.base)
    compute = training.sagemaker.instance_type if ctx.sagemaker else "local-cpu"
    expected.compute = compute
    sparse = spec.model.type == "sparse"
    provider = "user-pairs" if spec.source.type == "pairs" else spec.querygen.provider
    log = spec.querygen.query_log
    log_pairs = kept_count(ctx.log_queries, log.keep_fraction) if log and not sparse else 0
    # The train stage's own rules: the cap, the merge validation split, the query-log pairs, the epochs table.
    pairs, epochs, validation = pairs_and_epochs(
        training, generated_train_pairs(ctx), provider, log_pairs, spec.model.type
    )
    seen = training.max_steps * default_batch_size(ctx, pairs, size) if training.max_steps else round(pairs * epochs)
    expected.train_pairs, expected.train_examples_seen = pairs, seen

    seq = spec.model.max_seq_length or REFERENCE_SEQ_LENGTH
    measured = prices.throughput(compute, size)
    if measured is None:
        return [
            LineItem(
                stage="train",
                item=f"{compute}: no training throughput in the price table (add a row to "
                "osft/common/data/prices.json throughput.training_pairs_per_second)",
                quantity=seen,
                unit="examples",
            )
        ]
    rate = measured * REFERENCE_SEQ_LENGTH / seq
    if sparse:  # osft.trainer.sparse.train mines for distillation too, and takes no query log
        mining = training.hard_negatives.active(provider) or training.distillation.enabled
    else:
        mining = training.hard_negatives.active(provider, log is not None)
    texts_per_example = 2 + (training.hard_negatives.num_negatives if mining else 0)
    train_seconds = seen / rate * texts_per_example / 2
    encode_rate = rate * prices.data["throughput"]["encode_speedup"]
    if mining:
        train_seconds += (ctx.sample.documents + pairs) / encode_rate
    if training.distillation.enabled:
        train_seconds += pairs * (texts_per_example - 1) / (encode_rate / 2)
    if validation:  # each merge ratio encodes the validation queries and a corpus sample
        scored = min(ctx.sample.documents, validation + MERGE_CORPUS_SAMPLE) + validation
        train_seconds += len(set(training.merge.ratios)) * scored / encode_rate
    count = training.sagemaker.instance_count if compute != "local-cpu" else 1
    train_seconds /= count
    passages = passage_vectors_scored(spec)
    evaluate_seconds = 2 * ctx.sample.documents / encode_rate * (2 if passages else 1)
    encoded = f"corpus{' and its passages' if passages else ''} encoded with base and tuned models"
    expected.train_seconds = round(train_seconds, 1)
    expected.evaluate_seconds = round(evaluate_seconds, 1)
    what = f"{seen:,} examples ({pairs:,} pairs × {epochs:g} epochs) at {rate:,.1f} pairs/s ({size} model, seq {seq})"
    if validation:
        what += f", {validation:,} pairs held out to choose the merge ratio"
    if compute == "local-cpu":
        return [
            LineItem(
                stage="train", item=f"local CPU: {what}", quantity=round(train_seconds / 3600, 3), unit="hours", usd=0.0
            ),
            LineItem(
                stage="evaluate",
                item=f"local CPU: {encoded}",
                quantity=round(evaluate_seconds / 3600, 3),
                unit="hours",
                usd=0.0,
            ),
        ]
    hourly = prices.data["sagemaker_training_per_hour"].get(compute)
    overhead = prices.data["sagemaker_billing_overhead_seconds"]
    hours = (train_seconds + overhead) / 3600 * count
    spot = 1 - prices.data["spot_discount"]
    use_spot = training.sagemaker.use_spot
    return [
        LineItem(
            stage="train",
            item=f"SageMaker {count}× {compute} on-demand: {what}",
            quantity=round(hours, 3),
            unit="instance-hours",
            unit_usd=hourly,
            usd=_round(hourly and hours * hourly),
            alternative=use_spot,
        ),
        LineItem(
            stage="train",
            item=f"SageMaker {count}× {compute} managed spot ({prices.data['spot_discount']:.0%} off)",
            quantity=round(hours, 3),
            unit="instance-hours",
            unit_usd=_round(hourly and hourly * spot),
            usd=_round(hourly and hours * hourly * spot),
            alternative=not use_spot,
        ),
        LineItem(  # a second SageMaker job on one instance of the same type, spot when training is
            stage="evaluate",
            item=f"{compute}{' managed spot' if use_spot else ''}: {encoded}",
            quantity=round((evaluate_seconds + overhead) / 3600, 3),
            unit="instance-hours",
            unit_usd=_round(hourly and hourly * (spot if use_spot else 1)),
            usd=_round(hourly and (evaluate_seconds + overhead) / 3600 * hourly * (spot if use_spot else 1)),
        ),
    ]


def default_batch_size(ctx: Context, pairs: int, size: str) -> int:
    """The batch the train stage uses (``max_steps × batch`` examples are seen): the spec's, else its default."""
    training = ctx.spec.training
    if training.batch_size:
        return training.batch_size
    if ctx.spec.model.type == "sparse":
        wanted = SPARSE_BATCH_SIZE
    elif training.loss == "cached-mnrl":
        wanted = CACHED_MNRL_BATCH
    else:
        wanted = BATCH_BY_MODEL_SIZE[size]
    return min(wanted, max(2, pairs))


def endpoint_items(ctx: Context) -> list[LineItem]:
    deploy = ctx.spec.deploy
    if deploy is None or deploy.sagemaker is None:
        return []
    endpoint, prices, cost = deploy.sagemaker, ctx.prices, ctx.spec.cost
    hourly = prices.data["sagemaker_realtime_per_hour"].get(endpoint.instance_type)
    realtime_hours = prices.data["hours_per_month"] * endpoint.instance_count
    requests = cost.expected_requests_per_day * DAYS_PER_MONTH
    ms = prices.data["throughput"]["serverless_ms_per_request"][model_size(ctx.spec.model.base)]
    gb_seconds = requests * ms / 1000 * endpoint.memory_size_mb / 1024
    data_gb = requests * cost.mean_request_kb / 1024 / 1024
    serverless = gb_seconds * prices.data["sagemaker_serverless_per_gb_second"]
    serverless += data_gb * prices.data["sagemaker_serverless_per_gb_processed"]
    realtime = endpoint.mode == "real-time"
    return [
        LineItem(
            stage="endpoint",
            item=f"real-time {endpoint.instance_count}× {endpoint.instance_type}, always on",
            quantity=realtime_hours,
            unit="instance-hours/month",
            unit_usd=hourly,
            usd=_round(hourly and realtime_hours * hourly),
            monthly=True,
            alternative=not realtime,
        ),
        LineItem(
            stage="endpoint",
            item=f"serverless {endpoint.memory_size_mb} MB: {cost.expected_requests_per_day:,} requests/day "
            f"× {ms} ms (cost.expected_requests_per_day)",
            quantity=round(requests),
            unit="requests/month",
            usd=_round(serverless),
            monthly=True,
            alternative=realtime,
        ),
    ]


def aws_items(ctx: Context) -> list[LineItem]:
    """Fargate for extract, S3 storage for a month, Step Functions transitions (AWS runs only)."""
    if not ctx.on_aws:
        return []
    prices = ctx.prices
    seconds = ctx.sample.documents / prices.data["throughput"]["extract_docs_per_second"]
    size = model_size(ctx.spec.model.base)
    exports = 1 + ctx.spec.training.export.onnx + ctx.spec.training.export.onnx_int8 * 0.25
    exports += 2 * ctx.spec.training.export.opensearch_zip
    gigabytes = 3 * ctx.sample.total_bytes / 1e9 + MODEL_GB[size] * exports
    transitions = prices.data["step_functions_transitions_per_run"]
    return [
        *_fargate("extract", seconds, prices),
        LineItem(
            stage="storage",
            item="S3 Standard: corpus, pairs, model and exports, one month",
            quantity=round(gigabytes, 3),
            unit="GB-month",
            unit_usd=prices.data["s3_per_gb_month"],
            usd=_round(gigabytes * prices.data["s3_per_gb_month"]),
        ),
        LineItem(
            stage="orchestration",
            item="Step Functions standard workflow",
            quantity=transitions,
            unit="state transitions",
            usd=_round(transitions * prices.data["step_functions_per_1000_transitions"] / 1000),
        ),
    ]


def _fargate(stage: str, seconds: float, prices: PriceTable) -> list[LineItem]:
    hours = max(seconds, 60) / 3600
    hourly = FARGATE_VCPU * prices.data["fargate_per_vcpu_hour"] + FARGATE_GB * prices.data["fargate_per_gb_hour"]
    return [
        LineItem(
            stage=stage,
            item=f"Fargate task ({FARGATE_VCPU:g} vCPU, {FARGATE_GB:g} GB)",
            quantity=round(hours, 4),
            unit="task-hours",
            unit_usd=round(hourly, 5),
            usd=_round(hours * hourly),
        )
    ]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
