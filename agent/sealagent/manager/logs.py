"""Logging for the manager process: structlog, JSON lines when stderr is not a terminal.

Loggers bind ``sector`` and ``task`` ids (``log.bind(sector=3, task="t-9")``) so one
``grep '"sector": 3'`` follows a sector through the pipeline.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    """A logger writing to the current ``sys.stderr`` (looked up on every use)."""
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: str = "info", *, json_lines: bool | None = None) -> None:
    """Route structlog (and the stdlib loggers) to stderr at ``level``.

    ``json_lines`` defaults to "stderr is not a TTY".
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    as_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    renderer: Any = (structlog.processors.JSONRenderer() if as_json
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)
