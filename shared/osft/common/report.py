"""The short report printed at the end of a run and by ``osft status``."""

from __future__ import annotations

from osft.common.estimate import ESTIMATE_FILE, Estimate, render_comparison
from osft.common.manifests import EvaluateManifest, RegisterManifest, StageManifest, TrainManifest
from osft.common.manifests.evaluate import SEARCH_LABELS
from osft.common.runner import PipelineResult, StageStatus
from osft.common.storage import Location, join

METRIC_ORDER = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100")


def _counts(manifest: StageManifest) -> str:
    return ", ".join(f"{k}={v}" for k, v in manifest.counts.items())


def _metric_rows(evaluation: EvaluateManifest) -> list[str]:
    stats = evaluation.stats
    rows = [f"  {'metric':<12}{'base':>8}{'tuned':>8}{'change':>9}"]
    for metric in [m for m in METRIC_ORDER if m in stats.base] + [m for m in stats.base if m not in METRIC_ORDER]:
        base, tuned = stats.base[metric], stats.tuned.get(metric, float("nan"))
        rows.append(f"  {metric:<12}{base * 100:>8.2f}{tuned * 100:>8.2f}{(tuned - base) * 100:>+9.2f}")
    return rows


def render_evaluation(evaluation: EvaluateManifest) -> list[str]:
    stats = evaluation.stats
    kind = (
        "real judged queries"
        if stats.decided_by == "judged"
        else "synthetic held-out pairs (flatters the tuned model; add judged queries for a trustworthy gate)"
    )
    searched = f", compared in {SEARCH_LABELS[stats.decided_on]}" if stats.decided_on != "model" else ""
    lines = [f"evaluation on {stats.queries} queries over {stats.corpus_size} documents, decided by {kind}{searched}:"]
    lines += _metric_rows(evaluation)
    verdict = "ACCEPTED" if stats.accepted else "REJECTED"
    lines.append(f"gate: {verdict}: {stats.reason}")
    for name, metrics in stats.extra.items():
        shown = ", ".join(f"{k}={v * 100:.2f}" for k, v in metrics.items())
        lines.append(f"  also measured ({name}): {shown}")
    return lines


def render_report(result: PipelineResult) -> str:
    lines = [f"osft run '{result.spec.name}' in {result.run_dir}", ""]
    lines.append(f"{'stage':<10}{'time':>10}  counts")
    for outcome in result.outcomes:
        timing = "skipped" if outcome.skipped else f"{outcome.manifest.timings.seconds:.1f}s"
        lines.append(f"{outcome.stage:<10}{timing:>10}  {_counts(outcome.manifest)}")
    lines.append("")
    lines += _details(result.run_dir, [o.manifest for o in result.outcomes])
    return "\n".join(lines)


def _details(run_dir: str, manifests: list[StageManifest]) -> list[str]:
    lines: list[str] = []
    for manifest in manifests:
        for note in manifest.notes:
            lines.append(f"note ({manifest.stage}): {note}")
        if isinstance(manifest, EvaluateManifest):
            lines += render_evaluation(manifest)
        if isinstance(manifest, TrainManifest):
            lines.append(f"model: {join(run_dir, manifest.stats.model_dir)}")
        if isinstance(manifest, RegisterManifest):
            stats = manifest.stats
            if stats.model_id:
                lines.append(f"OpenSearch model_id: {stats.model_id}")
            if stats.endpoint_name:
                lines.append(f"SageMaker endpoint: {stats.endpoint_name}")
            if stats.skipped_reason:
                lines.append(f"not deployed: {stats.skipped_reason}")
    lines += _estimate_comparison(run_dir, manifests)
    return lines


def _estimate_comparison(run_dir: str, manifests: list[StageManifest]) -> list[str]:
    """Estimated vs counted (tokens, training seconds), when the run folder holds an estimate.json."""
    location = Location(join(run_dir, ESTIMATE_FILE))
    if not location.exists():
        return []
    estimate = Estimate.model_validate_json(location.read_bytes())
    by_stage = {m.stage: m for m in manifests}
    return render_comparison(estimate, by_stage.get("querygen"), by_stage.get("train"), by_stage.get("evaluate"))  # type: ignore[arg-type]


def render_status(run_dir: str, statuses: list[StageStatus]) -> str:
    lines = [f"run folder {run_dir}", f"{'stage':<10}{'state':<36}{'time':>9}  counts"]
    for status in statuses:
        timing = f"{status.manifest.timings.seconds:.1f}s" if status.manifest else ""
        counts = _counts(status.manifest) if status.manifest else ""
        lines.append(f"{status.stage:<10}{status.state:<36}{timing:>9}  {counts}")
    done = [s.manifest for s in statuses if s.manifest is not None]
    errors = [f"error ({s.stage}, {s.failed_at or 'time unknown'}): {s.error}" for s in statuses if s.error]
    details = errors + _details(run_dir, done)
    return "\n".join(lines + (["", *details] if details else []))
