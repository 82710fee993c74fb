"""structlog set-up for the agent: JSON lines off a terminal, console on one.

Rules: every line has `timestamp` (ISO-8601 UTC), `level`, `event`, and `node`
(bound once per agent with structlog.contextvars, which trio copies into child
tasks). The level threshold is a module variable read by a processor, so
SIGHUP can change it without re-creating loggers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_threshold = _LEVELS["info"]
_open_file: TextIO | None = None


def set_level(level: str) -> None:
    global _threshold
    _threshold = _LEVELS[level.lower()]


def _filter_level(
    _logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if _LEVELS.get(method, 20) < _threshold:
        raise structlog.DropEvent
    return event


def configure_logging(
    level: str = "info", fmt: str | None = None, log_file: Path | None = None
) -> None:
    """Configure structlog for this process (idempotent; later calls replace earlier)."""
    global _open_file
    set_level(level)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        stream: TextIO = log_file.open("a", encoding="utf-8", buffering=1)
        if _open_file is not None:
            _open_file.close()
        _open_file = stream
    else:
        stream = sys.stderr
    if fmt is None:
        fmt = "console" if stream.isatty() else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            _filter_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
