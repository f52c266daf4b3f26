"""``register run --spec URI --run-dir URI`` and ``register cleanup --spec URI --run-dir URI``."""

from __future__ import annotations

import click

from osft.common.logging import configure_logging
from osft.common.stage_cli import report_errors, stage_cli
from osft.registrar.stage import STAGE

cli = stage_cli(STAGE)


@cli.command("cleanup", help="Delete the run's ML Commons models and connector, and its SageMaker endpoint.")
@click.option("--spec", "spec_uri", required=True, help="Run spec JSON (local path or s3:// URI).")
@click.option("--run-dir", required=True, help="Run folder (local path or s3:// URI).")
def cleanup(spec_uri: str, run_dir: str) -> None:
    from osft.registrar.cleanup import cleanup_run

    configure_logging()
    result = report_errors(lambda: cleanup_run(spec_uri, run_dir))
    where = f" of endpoint {result.endpoint_name}" if result.endpoint_name else ""
    click.echo(f"deleted {len(result.deleted)} resource(s){where}: {', '.join(result.deleted) or 'none left'}")
    for kept in result.kept:
        click.echo(f"kept {kept}")


if __name__ == "__main__":
    cli()
