"""structlog set-up: readable lines on a terminal, JSON lines in containers and CI."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(level: str | None = None, json_output: bool | None = None) -> None:
    """Configure structlog once per process. ``OSFT_LOG_LEVEL`` and ``OSFT_LOG_JSON`` override."""
    level_name = (level or os.environ.get("OSFT_LOG_LEVEL", "INFO")).upper()
    if json_output is None:
        env = os.environ.get("OSFT_LOG_JSON")
        json_output = env == "1" if env is not None else not sys.stderr.isatty()
    renderer = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks if json_output else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        # One write per event (text and newline together): print() writes them apart, and torchrun's ranks,
        # which share the container's stderr, then end up inside each other's lines.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through the standard library; keep them quiet unless debugging. The
    # handlers filter too: a library that sets its own logger to DEBUG (bm25s does) bypasses the root's level.
    library_level = logging.WARNING if level_name != "DEBUG" else logging.DEBUG
    logging.basicConfig(level=library_level, stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.setLevel(library_level)


def get_logger(**context: object) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger("osft").bind(**context)
