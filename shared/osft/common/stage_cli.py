"""The click command every stage image exposes: ``<stage> run --spec URI --run-dir URI``."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from osft.common.errors import OsftError
from osft.common.logging import configure_logging, get_logger
from osft.common.stage import StageDefinition, run_stage


def report_errors(func: Callable[[], object]) -> object:
    """Run ``func``; print a known error's message (no traceback) and exit with its code."""
    try:
        return func()
    except OsftError as exc:
        get_logger().debug("error_details", exc_info=True)
        click.echo(f"error: {exc.render()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted: completed stages and saved progress are kept; run again to resume", err=True)
        sys.exit(130)


def add_run_command(group: click.Group, definition: StageDefinition) -> click.Command:
    @group.command("run", help=f"Run the {definition.name} stage of a run folder.")
    @click.option("--spec", "spec_uri", required=True, help="Run spec JSON (local path or s3:// URI).")
    @click.option("--run-dir", required=True, help="Run folder (local path or s3:// URI).")
    @click.option("--force", is_flag=True, help="Run even when the outputs already match the inputs.")
    def run(spec_uri: str, run_dir: str, force: bool) -> None:
        configure_logging()
        report_errors(lambda: run_stage(definition, spec_uri, run_dir, force=force))

    return run


def stage_cli(definition: StageDefinition) -> click.Group:
    """A click group for one stage, with its ``run`` command; images may add more commands."""

    @click.group(name=definition.name, help=f"osft {definition.name} stage.")
    def group() -> None:
        pass

    add_run_command(group, definition)
    return group
