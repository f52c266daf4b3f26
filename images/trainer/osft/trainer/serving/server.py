"""Starting the server: load the model, build the app, run uvicorn."""

from __future__ import annotations

import uvicorn

from osft.common.logging import get_logger
from osft.trainer.serving.app import create_app
from osft.trainer.serving.encoder import load_encoder
from osft.trainer.serving.settings import ServeSettings


def serve(settings: ServeSettings) -> None:
    """Load the model and serve it until the process is stopped (SIGTERM ends it gracefully)."""
    log = get_logger(component="serve")
    log.info("model_loading", model=settings.model, precision=settings.precision, onnx_file=settings.onnx_file)
    encoder = load_encoder(settings)
    app = create_app(encoder, settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
