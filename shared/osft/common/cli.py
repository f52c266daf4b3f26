"""The ``osft`` command: run the whole pipeline locally, show a run's status, validate a spec."""

from __future__ import annotations

import json

import click

from osft.common.logging import configure_logging
from osft.common.report import render_report, render_status
from osft.common.runner import check_local_inputs, run_pipeline, run_status
from osft.common.spec import json_schema
from osft.common.stage import STAGE_ORDER, load_spec
from osft.common.stage_cli import report_errors


@click.group(help="Fine-tune OpenSearch retrieval models on your own documents.")
@click.version_option(package_name="osft-common")
def main() -> None:
    configure_logging()


@main.command(help="Run every stage of SPEC locally, skipping stages that are already done.")
@click.argument("spec")
@click.option("--run-dir", default=None, help="Run folder; defaults to RUNS_ROOT/<spec name>.")
@click.option("--runs-root", default="runs", show_default=True, help="Folder (or s3:// prefix) holding run folders.")
@click.option(
    "--force",
    multiple=True,
    type=click.Choice(STAGE_ORDER),
    help="Re-run this stage even if done (a completed stage starts over); repeat for several.",
)
@click.option("--until", type=click.Choice(STAGE_ORDER), default=None, help="Stop after this stage.")
def run(spec: str, run_dir: str | None, runs_root: str, force: tuple[str, ...], until: str | None) -> None:
    result = report_errors(
        lambda: run_pipeline(spec, run_dir=run_dir, runs_root=runs_root, force=force, until=until), resumable=True
    )
    click.echo(render_report(result))  # type: ignore[arg-type]


@main.command(help="Show what is done in RUN_DIR.")
@click.argument("run_dir")
def status(run_dir: str) -> None:
    click.echo(report_errors(lambda: render_status(run_dir, run_status(run_dir))))


@main.command(help="Check SPEC and list every problem by field path.")
@click.argument("spec")
def validate(spec: str) -> None:
    parsed = report_errors(lambda: load_spec(spec))
    report_errors(lambda: check_local_inputs(parsed, spec))  # type: ignore[arg-type]
    click.echo(f"{spec}: valid run spec '{parsed.name}'")  # type: ignore[union-attr]


@main.command(help="Estimate what SPEC will cost, by stage, before anything spends money.")
@click.argument("spec", required=False)
@click.option("--spec", "spec_option", default=None, help="Run spec (local path or s3:// URI), instead of SPEC.")
@click.option("--run-dir", default=None, help="Run folder to measure the corpus in and write estimate.json to.")
@click.option("--enforce", is_flag=True, help="Exit non-zero when the estimate exceeds the spec's max_cost_usd.")
@click.option(
    "--sagemaker",
    is_flag=True,
    help="Price train and evaluate as SageMaker jobs whatever training.compute says (the AWS state machine's "
    "cost guard passes it: the state machine always trains there).",
)
def estimate(spec: str | None, spec_option: str | None, run_dir: str | None, enforce: bool, sagemaker: bool) -> None:
    from osft.common.estimate import check_budget, estimate_run, render_estimate

    if spec and spec_option and spec != spec_option:
        raise click.UsageError(f"two specs given, {spec} and --spec {spec_option}: give the spec once")
    spec_uri = spec_option or spec
    if not spec_uri:
        raise click.UsageError("give the spec as SPEC or --spec URI")
    result = report_errors(lambda: estimate_run(spec_uri, run_dir, on_sagemaker=sagemaker))
    click.echo(render_estimate(result))  # type: ignore[arg-type]
    if enforce:
        report_errors(lambda: check_budget(result))  # type: ignore[arg-type]


@main.command(help="Print the run spec's JSON Schema.")
def schema() -> None:
    click.echo(json.dumps(json_schema(), indent=2))


if __name__ == "__main__":
    main()
