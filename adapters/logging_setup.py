"""Log lines for operations: JSON on the root logger, each carrying its request's id.

Every line has ``timestamp`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, and
``request_id`` when it was written while a request was being handled (the HTTP request-id
middleware sets :data:`REQUEST_ID`). Extra fields passed with ``extra={...}`` become keys
of their own, which is how the access log carries method, route, status and duration.

Uvicorn's loggers are routed through the same handler, and its access log is switched
off: :mod:`adapters.http.middleware` writes one that names route templates instead of
concrete paths (which may hold file numbers and ids). Run uvicorn with ``log_config=None``
and ``access_log=False`` so that it does not install its own handlers over these.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("akte_request_id", default=None)
"""The id of the request being handled in this context, ``None`` outside requests."""

_HANDLER_MARK = "_akte_logging_handler"
_UVICORN_LOGGERS_WE_FORMAT = ("uvicorn", "uvicorn.error")
_UVICORN_ACCESS_LOGGER = "uvicorn.access"
# Uvicorn passes an ANSI-coloured copy of some messages as an extra field.
_FIELDS_NOT_LOGGED = (*RESERVED_ATTRS, "color_message")
_PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to each record that does not already carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = REQUEST_ID.get()
            if request_id is not None:
                record.request_id = request_id
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per line: timestamp, level, logger, message and any extra fields."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        reserved_attrs=_FIELDS_NOT_LOGGED,
        timestamp=True,
    )


def plain_formatter() -> logging.Formatter:
    """For a terminal: ``<time> <level> <logger> [<request id or ->] <message>``."""
    return logging.Formatter(_PLAIN_FORMAT, defaults={"request_id": "-"})


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged, not to what it was
    when logging was set up: whoever swaps it (a test runner capturing each test's
    output, then closing that capture) must not leave the handler writing to a closed
    stream ("I/O operation on closed file" from a server thread's access log)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # the base class sets it; always stderr
        pass


def configure_logging(
    *, json_logs: bool = True, level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Send all log lines to one handler on the root logger (``stream``: stderr).

    Calling it again replaces the handler it installed before rather than adding a
    second one, so every line is written once.
    """
    root = logging.getLogger()
    for installed in list(root.handlers):
        if getattr(installed, _HANDLER_MARK, False):
            root.removeHandler(installed)
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    )
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        json_formatter()
        if json_logs
        else logging.Formatter(_PLAIN_FORMAT, defaults={"request_id": "-"})
    )
    root.addHandler(handler)
    root.setLevel(level.upper())

    for name in _UVICORN_LOGGERS_WE_FORMAT:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access_logger = logging.getLogger(_UVICORN_ACCESS_LOGGER)
    access_logger.handlers.clear()
    access_logger.propagate = False
    access_logger.disabled = True
