"""Query generation with an LLM provider: build prompts, run them resumably, collect the queries.

``bedrock`` and ``openai`` call the model once per document; ``bedrock-batch`` runs batch
jobs and retries what they missed on demand. All three append each finished record to
``_work/records.jsonl`` and sync ``_work`` (``StageContext.save_work``) every 30 seconds, so
a killed run (local or on S3) resumes where it stopped.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from osft.common.corpus import Document
from osft.common.errors import OsftError, ServiceError
from osft.common.spec.querygen import BedrockOptions
from osft.common.stage import StageContext
from osft.common.storage import Location, is_s3, join
from osft.querygen import bedrock_clients
from osft.querygen.accounting import Usage
from osft.querygen.bedrock_batch import BatchRunner
from osft.querygen.bedrock_converse import BedrockConverse
from osft.querygen.offline import GeneratedQuery
from osft.querygen.on_demand import CUT_OFF, Checkpointer, run_records
from osft.querygen.openai_chat import OpenAIChat
from osft.querygen.prompts import PromptBuilder, PromptRecord, load_examples, load_templates
from osft.querygen.record_log import RecordLog, RecordResult

RECORD_LOG = "records.jsonl"
CHECKPOINT_SECONDS = 30.0


@dataclass
class LlmOutcome:
    """The queries of every parsed reply, in corpus order, and what producing them took."""

    queries: list[GeneratedQuery]
    usage: Usage
    notes: list[str] = field(default_factory=list)
    batch_jobs: list[str] = field(default_factory=list)
    batch_fallback: str | None = None
    retried_on_demand: int = 0


def local_input(ctx: StageContext, path: str) -> Path:
    """A spec-relative file or folder (local or s3://) as a local path."""
    return Location(ctx.resolve(path)).fetch(Path(tempfile.gettempdir()) / "osft-cache" / "querygen-inputs")


class CorpusPrompts:
    """The prompt records of a corpus. A record's id is its document's position in the whole
    corpus, so a logged reply keeps its id whichever sample (``querygen.max_docs``) is asked."""

    def __init__(self, ctx: StageContext, corpus: dict[str, Document]) -> None:
        options = ctx.spec.querygen
        templates = load_templates(local_input(ctx, options.prompt_dir) if options.prompt_dir else None)
        examples = load_examples(local_input(ctx, options.examples_path)) if options.examples_path else []
        self.builder = PromptBuilder(options, templates, examples)
        self.docs = list(corpus.values())

    def records(self, queried: Collection[str]) -> list[PromptRecord]:
        """One record per queried document, in corpus order."""
        return [self.builder.build(index, doc) for index, doc in enumerate(self.docs) if doc["id"] in queried]

    def record(self, record_id: str) -> PromptRecord | None:
        """The record with this id, or None when no document of the corpus has it."""
        digits = record_id[1:]
        index = int(digits) if digits.isdigit() else -1
        return self.builder.build(index, self.docs[index]) if 0 <= index < len(self.docs) else None


def generate_with_llm(ctx: StageContext, corpus: dict[str, Document], queried: Collection[str]) -> LlmOutcome:
    """Queries for the ``queried`` documents of ``corpus``, resuming from the replies already logged."""
    options = ctx.spec.querygen
    model_id = options.resolved_model_id
    assert model_id is not None
    prompts = CorpusPrompts(ctx, corpus)
    records = prompts.records(queried)
    log = RecordLog(ctx.work / RECORD_LOG)
    if log.done:
        ctx.log.info("querygen_resumed", records_done=len(log.done), records=len(records))
    checkpoint = Checkpointer(ctx.save_work, CHECKPOINT_SECONDS)
    outcome = LlmOutcome(queries=[], usage=Usage())

    try:
        _run_provider(ctx, prompts, records, log, checkpoint, outcome, model_id)
    finally:
        _save_quietly(ctx, checkpoint)

    results = [log.done[r.record_id] for r in records if r.record_id in log.done]
    outcome.usage = Usage.of(results)
    if results and outcome.usage.failures == len(results):
        errors = sorted({r.error or "" for r in results})[:3]
        raise ServiceError(
            f"every one of {len(results)} model calls failed ({'; '.join(errors)})",
            hint="check querygen.model_id, the region or base URL, and quotas; the stage resumes where it stopped",
        )
    if outcome.usage.failures:
        outcome.notes.append(f"{outcome.usage.failures} document(s) got no reply after retries and were skipped.")
    if outcome.usage.unparseable:
        outcome.notes.append(f"{outcome.usage.unparseable} reply(ies) could not be parsed as JSON and were skipped.")
    outcome.notes.extend(_stop_notes(results, "openai" if options.provider == "openai" else "bedrock"))
    outcome.queries = [
        GeneratedQuery(result.doc_id, query, kind)
        for result in results
        if result.status == "ok"
        for query, kind in result.queries
    ]
    return outcome


def _stop_notes(results: list[RecordResult], section: str) -> list[str]:
    """What replies that did not end normally mean: cut at the token limit, or filtered."""
    notes: list[str] = []
    cut = [r for r in results if r.stop_reason in CUT_OFF]
    if cut:
        salvaged = sum(r.status == "ok" for r in cut)
        notes.append(
            f"{len(cut)} reply(ies) stopped at the token limit ({salvaged} kept the queries written before the cut): "
            f"raise querygen.{section}.max_tokens (reasoning models need room to think), "
            "or lower querygen.max_document_chars for a model with a small context."
        )
    filtered = Counter(r.stop_reason for r in results if r.stop_reason and r.stop_reason not in CUT_OFF)
    for reason, count in sorted(filtered.items()):
        notes.append(f"{count} reply(ies) ended with stop reason {reason} (a guardrail or content filter).")
    return notes


def _run_provider(
    ctx: StageContext,
    prompts: CorpusPrompts,
    records: list[PromptRecord],
    log: RecordLog,
    checkpoint: Checkpointer,
    outcome: LlmOutcome,
    model_id: str,
) -> None:
    """Send every record not in ``log`` through the spec's provider, appending results to ``log``."""
    options = ctx.spec.querygen

    def progress(items):
        return ctx.progress(
            items, desc="generating", total=sum(r.record_id not in log.done for r in records), unit="doc"
        )

    if options.provider == "openai":
        chat = OpenAIChat(model_id, options.openai)
        try:
            run_records(
                records, chat, log, concurrency=options.openai.max_concurrency, checkpoint=checkpoint, progress=progress
            )
        finally:
            chat.close()
    else:
        bedrock = options.bedrock
        runtime = bedrock_clients.runtime_client(bedrock.region, bedrock.max_concurrency)
        converse = BedrockConverse(runtime, model_id, bedrock)
        retry = records
        if options.provider == "bedrock-batch":
            runner = BatchRunner(
                bedrock_clients.control_client(bedrock.region),
                model_id,
                batch_options(ctx, bedrock),
                ctx.work,
                prefix=f"{ctx.spec.name}/querygen-{_fingerprint(ctx)[:12]}",
                save=ctx.save_work,
                log=ctx.log,
            )
            batch = runner.run(records, log, prompts.record)
            outcome.batch_jobs, outcome.batch_fallback = batch.job_arns, batch.fallback
            retry = batch.to_retry
            if batch.fallback:
                outcome.notes.append(f"Bedrock batch inference not used: {batch.fallback}.")
            elif retry:
                outcome.retried_on_demand = len(retry) - batch.leftover
                if batch.leftover:
                    outcome.notes.append(
                        f"{batch.leftover} record(s) too few for another batch job ran on demand "
                        f"(querygen.bedrock.min_records_per_job)."
                    )
                ctx.log.info("batch_records_retried_on_demand", records=len(retry))
        run_records(retry, converse, log, concurrency=bedrock.max_concurrency, checkpoint=checkpoint, progress=progress)


def batch_options(ctx: StageContext, bedrock: BedrockOptions) -> BedrockOptions:
    """Fill the batch staging prefix and service role from the run folder and the task's environment.

    On AWS the run folder is on S3 and the ECS task carries the batch role's ARN, so a spec
    need not repeat either.
    """
    staging = bedrock.staging_uri or (join(ctx.run_dir, "querygen", "_bedrock") if is_s3(ctx.run_dir) else None)
    role = bedrock.service_role_arn or os.environ.get("OSFT_BEDROCK_BATCH_ROLE_ARN")
    if not staging:
        raise OsftError(
            "querygen.bedrock.staging_uri: batch jobs read and write S3, and this run folder is local",
            hint="set querygen.bedrock.staging_uri to an s3:// prefix, or run with an s3:// --run-dir",
        )
    if not role:
        raise OsftError(
            "querygen.bedrock.service_role_arn: batch jobs need a role Bedrock can assume",
            hint="set it in the spec, or OSFT_BEDROCK_BATCH_ROLE_ARN (the Terraform stack sets it for the task)",
        )
    return bedrock.model_copy(update={"staging_uri": staging, "service_role_arn": role})


def _save_quietly(ctx: StageContext, checkpoint: Checkpointer) -> None:
    """Sync ``_work`` one last time, also after an error, without hiding that error."""
    try:
        checkpoint.flush()
    except Exception as exc:  # noqa: BLE001 - the original error matters more
        ctx.log.warning("work_not_saved", error=str(exc))


def _fingerprint(ctx: StageContext) -> str:
    marker = ctx.work / ".fingerprint"
    return marker.read_text() if marker.exists() else "run"
