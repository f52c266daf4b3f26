"""Commands of the trainer image: ``train``, ``evaluate`` and ``serve``.

``train run`` / ``evaluate run`` follow the stage contract (``--spec URI --run-dir URI``).
"""

from __future__ import annotations

import click

from osft.common.stage_cli import add_run_command
from osft.trainer.evaluate_stage import STAGE as EVALUATE_STAGE
from osft.trainer.train_stage import STAGE as TRAIN_STAGE


@click.group(name="train", help="osft train stage.")
def train_cli() -> None:
    pass


@click.group(name="evaluate", help="osft evaluate stage: base vs fine-tuned, and the deployment gate.")
def evaluate_cli() -> None:
    pass


@click.command(name="serve", help="Serve a model over HTTP (SageMaker inference contract).")
def serve_cli() -> None:
    raise click.ClickException("serving is not available in this trainer version")


add_run_command(train_cli, TRAIN_STAGE)
add_run_command(evaluate_cli, EVALUATE_STAGE)
