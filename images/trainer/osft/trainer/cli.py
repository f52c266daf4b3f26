"""Commands of the trainer image: ``train``, ``evaluate`` and ``serve``.

``train run`` / ``evaluate run`` follow the stage contract (``--spec URI --run-dir URI``).
``train`` with no subcommand is the SageMaker training-container contract (``osft.trainer.sagemaker``).
"""

from __future__ import annotations

import sys

import click

from osft.common.logging import configure_logging
from osft.common.stage_cli import add_run_command
from osft.trainer.evaluate_stage import STAGE as EVALUATE_STAGE
from osft.trainer.train_stage import STAGE as TRAIN_STAGE


@click.group(
    name="train",
    help="osft train stage. With no command: run as a SageMaker training job (reads /opt/ml, or $OSFT_SAGEMAKER_ROOT).",
    invoke_without_command=True,
)
@click.pass_context
def train_cli(ctx: click.Context) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from osft.trainer.sagemaker import SageMakerLayout, run_job

    configure_logging()
    sys.exit(run_job(SageMakerLayout.from_env(), {"train": TRAIN_STAGE, "evaluate": EVALUATE_STAGE}))


@click.group(name="evaluate", help="osft evaluate stage: base vs fine-tuned, and the deployment gate.")
def evaluate_cli() -> None:
    pass


@click.command(name="serve", help="Serve a model over HTTP (SageMaker inference contract: /ping, /invocations).")
@click.option(
    "--model",
    envvar="OSFT_SERVE_MODEL",
    default="/opt/ml/model",
    show_default=True,
    help="SentenceTransformer or SparseEncoder folder (SageMaker extracts model.tar.gz to /opt/ml/model).",
)
@click.option("--host", envvar="OSFT_SERVE_HOST", default="0.0.0.0", show_default=True)
@click.option("--port", envvar=["OSFT_SERVE_PORT", "SAGEMAKER_BIND_TO_PORT"], type=int, default=8080, show_default=True)
@click.option(
    "--precision",
    envvar="OSFT_SERVE_PRECISION",
    type=click.Choice(["auto", "fp32", "int8"]),
    default="auto",
    show_default=True,
    help="int8 serves the ONNX int8 export; auto uses --onnx-file when given.",
)
@click.option("--onnx-file", envvar="OSFT_SERVE_ONNX_FILE", default=None, help="ONNX file, relative to the model.")
@click.option("--device", envvar="OSFT_SERVE_DEVICE", default=None, help="cpu, cuda...; default: GPU when present.")
@click.option("--max-batch-size", envvar="OSFT_SERVE_MAX_BATCH_SIZE", type=int, default=64, show_default=True)
@click.option("--max-wait-ms", envvar="OSFT_SERVE_MAX_WAIT_MS", type=float, default=5.0, show_default=True)
@click.option("--max-concurrency", envvar="OSFT_SERVE_MAX_CONCURRENCY", type=int, default=64, show_default=True)
@click.option("--max-inputs", envvar="OSFT_SERVE_MAX_INPUTS", type=int, default=256, show_default=True)
@click.option("--max-text-chars", envvar="OSFT_SERVE_MAX_TEXT_CHARS", type=int, default=20_000, show_default=True)
@click.option(
    "--max-body-bytes", envvar="OSFT_SERVE_MAX_BODY_BYTES", type=int, default=5 * 1024 * 1024, show_default=True
)
def serve_cli(**options: object) -> None:
    from osft.common.logging import configure_logging
    from osft.common.stage_cli import report_errors
    from osft.trainer.serving.server import serve
    from osft.trainer.serving.settings import ServeSettings

    configure_logging()
    report_errors(lambda: serve(ServeSettings(**options)))  # type: ignore[arg-type]


add_run_command(train_cli, TRAIN_STAGE)
add_run_command(evaluate_cli, EVALUATE_STAGE)
