"""The click command every stage image exposes: ``<stage> run --spec URI --run-dir URI``."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import click

from osft.common.errors import OsftError, StorageError
from osft.common.logging import configure_logging, get_logger
from osft.common.stage import StageDefinition, run_stage


class Terminated(KeyboardInterrupt):
    """SIGTERM (``docker stop``, an ECS task stopped) raised like Ctrl-C, for `osft run` and `<stage> run`.

    The SageMaker entry point does not install it: SageMaker itself syncs /opt/ml/checkpoints to S3.
    """


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def _sigterm_interrupts(enabled: bool) -> Iterator[None]:
    """Turn SIGTERM into an exception while a run goes on, so ``finally`` blocks still save progress.

    Python's default for SIGTERM ends the process on the spot: no ``finally``, no last sync of
    ``_work`` to an S3 run folder, no message. Signals can only be handled in the main thread.
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def report_errors(func: Callable[[], object], *, resumable: bool = False) -> object:
    """Run ``func``; print a known error's message (no traceback) and exit with its code.

    ``resumable``: ``func`` runs stages; SIGTERM then stops it like Ctrl-C, and the message says
    that a new run resumes.
    """
    try:
        with _sigterm_interrupts(resumable):
            return func()
    except OsftError as exc:
        get_logger().debug("error_details", exc_info=True)
        click.echo(f"error: {exc.render()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        resume = ": completed stages and saved progress are kept; run again to resume" if resumable else ""
        click.echo(f"interrupted{resume}", err=True)
        sys.exit(128 + signal.SIGTERM if isinstance(exc, Terminated) else 130)
    except OSError as exc:
        # A file the code did not expect to fail (disk full, permissions, a path that is a file): still
        # no traceback, but the path and the system's reason.
        get_logger().debug("error_details", exc_info=True)
        where = f"{exc.filename}: " if exc.filename else ""
        error = StorageError(f"{where}{exc.strerror or exc}", hint="set OSFT_LOG_LEVEL=DEBUG for the details")
        click.echo(f"error: {error.render()}", err=True)
        sys.exit(error.exit_code)


def add_run_command(group: click.Group, definition: StageDefinition) -> click.Command:
    @group.command("run", help=f"Run the {definition.name} stage of a run folder.")
    @click.option("--spec", "spec_uri", required=True, help="Run spec JSON (local path or s3:// URI).")
    @click.option("--run-dir", required=True, help="Run folder (local path or s3:// URI).")
    @click.option(
        "--force",
        is_flag=True,
        help="Run even when the outputs already match the inputs; a completed stage starts over.",
    )
    def run(spec_uri: str, run_dir: str, force: bool) -> None:
        configure_logging()
        report_errors(lambda: run_stage(definition, spec_uri, run_dir, force=force), resumable=True)

    return run


def stage_cli(definition: StageDefinition) -> click.Group:
    """A click group for one stage, with its ``run`` command; images may add more commands."""

    @click.group(name=definition.name, help=f"osft {definition.name} stage.")
    def group() -> None:
        pass

    add_run_command(group, definition)
    return group
