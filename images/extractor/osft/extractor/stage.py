"""The extract stage: read the source, map fields, clean, de-duplicate, sample, write shards.

Documents stream from the source to the shards one at a time; with sampling, only the
sample of ``sampling.max_docs`` entries is held in memory (``sampling.BottomKSample``).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from osft.common.corpus import Document
from osft.common.errors import InputDataError
from osft.common.manifests import ExtractStats
from osft.common.spec.source import FieldMapping, LocalSource, OpenSearchSource, PairsSource, S3Source
from osft.common.stage import StageContext, StageDefinition, StageResult
from osft.extractor.bad_records import BadRecordPolicy
from osft.extractor.cleaning import DocumentCleaner
from osft.extractor.file_formats import RawRecord, read_file, text_id_stems
from osft.extractor.opensearch_source import OpenSearchExporter
from osft.extractor.pairs import PAIRS_FILE, PairsWriter, labelled_pairs
from osft.extractor.passages import PassageSplitter, load_tokenizer, resolve_tokenizer
from osft.extractor.records import MissingField, to_document, top_level_fields
from osft.extractor.sampling import BottomKSample
from osft.extractor.shard_writer import ShardWriter
from osft.extractor.source_files import SourceFile, source_files

TEXT_FIELDS = FieldMapping()
MAPPING_HINT = "fix source.fields, or set source.bad_records.on_error to 'skip' to skip such records (they are counted)"


def describe_source(ctx: StageContext) -> str:
    source = ctx.spec.source
    if isinstance(source, OpenSearchSource):
        return f"opensearch:{source.connection.url.rstrip('/')}/{source.index}"
    if isinstance(source, S3Source):
        return f"s3:{source.uri}"
    return f"{source.type}:{ctx.resolve(source.path)}"


def _files(ctx: StageContext) -> list[SourceFile]:
    source = ctx.spec.source
    if isinstance(source, S3Source):
        return source_files(source.uri, source.region)
    if isinstance(source, PairsSource):
        return source_files(ctx.resolve(source.path), source.region)
    assert isinstance(source, LocalSource)
    return source_files(ctx.resolve(source.path))


def _file_records(ctx: StageContext, policy: BadRecordPolicy) -> Iterator[RawRecord]:
    source = ctx.spec.source
    assert isinstance(source, (LocalSource, S3Source, PairsSource))
    text_unit = getattr(source, "text_unit", "line")
    columns = top_level_fields(source.fields) if isinstance(source, (LocalSource, S3Source)) else None
    files = _files(ctx)
    id_stems = text_id_stems(files, source.format) if isinstance(source, (LocalSource, S3Source)) else {}
    for file in files:
        yield from read_file(
            file,
            fmt=source.format,
            text_unit=text_unit,
            encoding=source.encoding,
            policy=policy,
            columns=columns,
            id_stem=id_stems.get(file.where),
            quoting=source.quoting,
        )


def _hit_records(exporter: OpenSearchExporter) -> Iterator[RawRecord]:
    where = f"{exporter.connection.url.rstrip('/')}/{exporter.source.index}"
    for hit in exporter.hits():
        data = dict(hit.get("_source") or {})
        data["_id"] = hit["_id"]
        yield RawRecord(f"{where}/_doc/{hit['_id']}", None, data)


def _with_resolved_ca(ctx: StageContext, source: OpenSearchSource) -> OpenSearchSource:
    """A relative ``ca_certs`` path is relative to the spec file, like every other path in it."""
    ca_certs = source.connection.ca_certs
    if not ca_certs:
        return source
    connection = source.connection.model_copy(update={"ca_certs": ctx.resolve(ca_certs)})
    return source.model_copy(update={"connection": connection})


def _documents(
    records: Iterator[RawRecord], mapping: FieldMapping, policy: BadRecordPolicy, counts: Counter[str]
) -> Iterator[Document]:
    for position, raw in enumerate(records):
        counts["records_read"] += 1
        try:
            yield to_document(raw.data, TEXT_FIELDS if raw.mapped else mapping, position)
        except MissingField as exc:
            policy.bad(
                exc.reason, str(exc), where=raw.where, line=raw.line, hint=f"fix source.fields, or {_skip_hint()}"
            )


def _skip_hint() -> str:
    return "set source.bad_records.on_error to 'skip' to skip such records (they are counted)"


def tokenizer_name(ctx: StageContext) -> str:
    configured = ctx.spec.cleaning.tokenizer
    if configured is None:
        return ctx.spec.model.base
    resolved = ctx.resolve(configured)
    return resolved if Path(resolved).exists() else configured


def _splitter(ctx: StageContext) -> PassageSplitter | None:
    cleaning = ctx.spec.cleaning
    if cleaning.max_passage_tokens is None:
        return None
    cap = 1 if cleaning.long_docs == "truncate" else cleaning.max_passages_per_doc
    return PassageSplitter(load_tokenizer(tokenizer_name(ctx)), cleaning.max_passage_tokens, cap)


def _clear_old_outputs(folder: Path) -> None:
    """Shards from an interrupted attempt with the same inputs; they are rewritten from scratch."""
    for old in [*folder.glob("docs-*.jsonl.gz"), *folder.glob(".docs-*.tmp"), folder / PAIRS_FILE]:
        old.unlink(missing_ok=True)


def _run_pairs(ctx: StageContext, policy: BadRecordPolicy, writer: ShardWriter, counts: Counter[str]) -> PairsWriter:
    cleaning = ctx.spec.cleaning
    records = ctx.progress(_file_records(ctx, policy), desc="reading pairs", unit="pair")

    def counted() -> Iterator[RawRecord]:
        for record in records:
            counts["records_read"] += 1
            yield record

    pairs = labelled_pairs(counted(), policy, html=cleaning.strip_html, whitespace=cleaning.normalize_whitespace)
    sampling = ctx.spec.sampling
    with PairsWriter(ctx.output_path(PAIRS_FILE), writer.write) as pairs_writer:
        if sampling.max_docs:
            sample = BottomKSample(sampling.max_docs, sampling.seed, key=lambda pair: f"{pair.query}\x1f{pair.passage}")
            for pair in pairs:
                sample.offer(pair)
            counts["sampled_out"] = sample.seen - len(sample.items)
            for pair in sample.items:
                pairs_writer.add(pair)
        else:
            for pair in pairs:
                pairs_writer.add(pair)
    return pairs_writer


def run(ctx: StageContext) -> StageResult:
    clock = time.perf_counter()
    source = ctx.spec.source
    sampling = ctx.spec.sampling
    policy = BadRecordPolicy(source.bad_records)
    counts: Counter[str] = Counter()
    removed: dict[str, int] = {}
    exporter: OpenSearchExporter | None = None
    pairs_writer: PairsWriter | None = None
    cleaner: DocumentCleaner | None = None
    _clear_old_outputs(ctx.workdir)

    with ShardWriter(ctx.workdir) as writer:
        if isinstance(source, PairsSource):
            pairs_writer = _run_pairs(ctx, policy, writer, counts)
            if pairs_writer.duplicates:
                removed["duplicate_pair"] = pairs_writer.duplicates
        else:
            total = None
            if isinstance(source, OpenSearchSource):
                exporter = OpenSearchExporter(_with_resolved_ca(ctx, source), log=ctx.log)
                total = exporter.check_index()
                records = _hit_records(exporter)
            else:
                records = _file_records(ctx, policy)
            docs = _documents(
                ctx.progress(records, desc="reading", total=total, unit="doc"), source.fields, policy, counts
            )
            cleaner = DocumentCleaner(ctx.spec.cleaning, _splitter(ctx))
            entries = cleaner.clean_all(docs)
            if sampling.max_docs:
                # Keyed by document id, so slices arriving in any order give the same sample.
                sample: BottomKSample[Document] = BottomKSample(sampling.max_docs, sampling.seed, key=lambda d: d["id"])
                for entry in entries:
                    sample.offer(entry)
                counts["sampled_out"] = sample.seen - len(sample.items)
                for entry in sample.items:
                    writer.write(entry)
            else:
                for entry in entries:
                    writer.write(entry)
            removed.update(cleaner.removed_counts)
    if counts["sampled_out"]:
        removed["sampled_out"] = counts["sampled_out"]
    seconds = time.perf_counter() - clock

    where = describe_source(ctx)
    if writer.count == 0:
        raise InputDataError(
            f"no documents left after reading and cleaning ({counts['records_read']} record(s) read, "
            f"removed: {removed or 'none'}, skipped: {dict(policy.skipped) or 'none'})",
            path=where,
            hint="check source.fields and cleaning.min_chars",
        )
    outputs = list(writer.shards) + ([PAIRS_FILE] if pairs_writer else [])
    stats = ExtractStats(
        source=where,
        records_read=counts["records_read"],
        documents_written=writer.count,
        skipped_bad_records=policy.total,
        skipped_by_reason=dict(policy.skipped),
        removed=removed,
        length_histogram=dict(sorted(writer.histogram.items())),
        length_chars=writer.length_summary,
        documents_split=cleaner.documents_split if cleaner else 0,
        passages_from_splits=cleaner.passages_from_splits if cleaner else 0,
        iteration=exporter.state.iteration if exporter else None,
        retries=exporter.retry.retries if exporter else 0,
        shards=list(writer.shards),
        pairs_file=PAIRS_FILE if pairs_writer else None,
        pairs_written=pairs_writer.pairs if pairs_writer else 0,
    )
    ctx.log.info(
        "documents_extracted",
        read=counts["records_read"],
        written=writer.count,
        removed=removed,
        skipped=dict(policy.skipped),
        docs_per_s=round(counts["records_read"] / max(seconds, 1e-9)),
    )
    return StageResult(
        stats=stats,
        outputs=outputs,
        counts={
            "documents": writer.count,
            "skipped": policy.total,
            **({"pairs": stats.pairs_written} if pairs_writer else {}),
            **(_index_counts(exporter) if exporter else {}),
        },
        notes=_notes(stats, exporter),
        steps={"read_clean_write": round(seconds, 3)},
    )


def _index_counts(exporter: OpenSearchExporter) -> dict[str, int]:
    """What the index counted and what the export read (ExtractStats has no field for them)."""
    state = exporter.state
    counts = {"hits_read": state.hits_read}
    if state.expected is not None:
        counts["index_count"] = state.expected
    expected_hits = state.expected_hits(exporter.source.slices)
    if expected_hits is not None:
        counts["expected_hits"] = expected_hits
    return counts


def _notes(stats: ExtractStats, exporter: OpenSearchExporter | None) -> list[str]:
    notes = []
    if stats.skipped_bad_records:
        notes.append(f"skipped {stats.skipped_bad_records} bad record(s): {stats.skipped_by_reason}")
    if stats.removed:
        notes.append(f"removed {sum(stats.removed.values())} document(s): {stats.removed}")
    if exporter is not None:
        if exporter.state.iteration == "scroll" and exporter.source.iteration == "auto":
            notes.append("the cluster does not offer point in time; the index was read with scroll")
        if not exporter.state.contexts_deleted:
            notes.append("some PIT/scroll contexts could not be deleted; they expire after keep_alive")
        shortfall = exporter.shortfall()
        if shortfall:
            notes.append(f"warning: {shortfall}")
    if stats.pairs_file:
        notes.append(f"{stats.pairs_written} labelled pair(s) from the source; query generation uses them as they are")
    return notes


def input_fingerprint(ctx: StageContext) -> str | None:
    """Size and version of the source files (so an edited corpus re-runs the stage), and the tokenizer."""
    source = ctx.spec.source
    digest = hashlib.sha256()
    if ctx.spec.cleaning.max_passage_tokens is not None:
        digest.update(resolve_tokenizer(tokenizer_name(ctx)).encode())
    if isinstance(source, OpenSearchSource):
        return digest.hexdigest()
    try:
        for file in _files(ctx):
            digest.update(f"{file.where}\0{file.version}\n".encode())
    except InputDataError:
        return None
    return digest.hexdigest()


STAGE = StageDefinition(
    name="extract",
    upstream=(),
    spec_sections=("source", "cleaning", "sampling"),
    run=run,
    version="4",  # 4: plain-text files sharing a stem get distinct ids
    input_fingerprint=input_fingerprint,
)
